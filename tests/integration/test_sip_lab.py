"""The SIP control experiment on real labs with Debian's Kamailio and baresip.

- scenarios/sip-check.yaml, run as a user runs it: a UA behind each NAT type and one in
  the proxy-only site, all home PCs rebooted at once; the run's own expectations pass
  (pcaps and PromQL), the pcaps hold the REGISTERs, 401 challenges and 200 OKs that
  crossed each NAT, both calls have media through the RTP relay (rtpengine), including
  the one from behind the symmetric NAT, and each caller says so itself; the relay's
  pcap holds their RTP; the corporate PC never registers (SIP cannot leave a proxy-only site);
- overload-control: the registrar answers a burst of REGISTERs with 503 + Retry-After,
  counted in Kamailio's own statistics, and the refused phones register later (their
  credentialed retries are never refused);
- bad input: a registrar Kamailio or rtpengine cannot start fails `up` with the daemon's
  own message and the node, and nothing of the lab is left.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import REPO, RunningLab, run_cli, unique_lab_name

pytestmark = [pytest.mark.root, pytest.mark.slow]

TOPOLOGY = str(REPO / "topologies" / "sip-2007.yaml")
SCENARIO = str(REPO / "scenarios" / "sip-check.yaml")
HOMES = ["home001", "home002", "home003", "home004", "home005"]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    tmp = tmp_path_factory.mktemp("sip-run")
    topology = tmp / "sip-2007.yaml"  # the same network under a lab name of its own
    text = Path(TOPOLOGY).read_text()
    assert "\nname: sip2007\n" in text
    topology.write_text(text.replace("\nname: sip2007\n", f"\nname: {unique_lab_name('sc')}\n"))
    result = run_cli("run", str(topology), SCENARIO, "--results", str(tmp / "results"),
                     "--run-id", "sip", "--no-report", "--ui-port", "0",
                     state_dir=tmp / "state", timeout=240)
    return tmp / "results" / "sip", result


def sip_payloads(pcap: Path) -> list[tuple[str, str, str]]:
    """(source, destination, first line) of every SIP message in a pcap."""
    from scapy.all import IP, UDP, rdpcap  # type: ignore[attr-defined]

    found = []
    for packet in rdpcap(str(pcap)):
        if IP in packet and UDP in packet:
            payload = bytes(packet[UDP].payload)
            line = payload.split(b"\r\n", 1)[0].decode(errors="replace")
            if "SIP/2.0" in line:
                found.append((packet[IP].src, packet[IP].dst, line))
    return found


def addresses(run_dir: Path) -> dict[str, str]:
    """Each node's address on its uplink (for a NAT: its public one), from lab.json."""
    nodes = json.loads((run_dir / "lab.json").read_text())["nodes"]
    found = {}
    for name, node in nodes.items():
        for interface in node.get("interfaces", []):
            if interface.get("address") and interface.get("peer") in (node.get("uplink"),
                                                                       None):
                found[name] = interface["address"].split("/")[0]
                break
    return found


def test_the_check_scenario_passes_its_own_expectations(run) -> None:  # noqa: ANN001
    run_dir, result = run
    assert result.returncode == 0, result.stderr[-3000:]
    verdicts = json.loads((run_dir / "verdicts.json").read_text())
    failed = {v["name"]: v["detail"] for v in verdicts if v["status"] != "pass"}
    assert len(verdicts) == 15 and not failed, failed
    assert "15 passed (of 15 expectations)" in result.stderr


def test_registers_and_200_oks_crossed_every_nat(run) -> None:  # noqa: ANN001
    run_dir, _ = run
    address = addresses(run_dir)
    registrar = address["registrar"]
    messages = sip_payloads(run_dir / "captures" / "registrar.pcap")
    for home in HOMES:  # outside the NAT: the NAT's public address, never the PC's own
        nat = address[f"{home}-nat"]
        assert any(src == nat and dst == registrar and line.startswith("REGISTER sip:")
                   for src, dst, line in messages), (home, messages[:10])
        assert any(src == registrar and dst == nat and line == "SIP/2.0 200 OK"
                   for src, dst, line in messages), (home, messages[:10])
        replies = [line for src, dst, line in messages if src == registrar and dst == nat
                   and line.startswith("SIP/2.0 ")]  # digest auth: challenged, then let in
        assert replies[:2] == ["SIP/2.0 401 Unauthorized", "SIP/2.0 200 OK"], (home, replies)
    inside = sip_payloads(run_dir / "captures" / "home4-pc.pcap")
    pc = address["home004"]  # behind the symmetric NAT: the 200 OK reached the PC itself
    assert any(src == pc and line.startswith("REGISTER") for src, _, line in inside)
    assert any(src == registrar and dst == pc and line == "SIP/2.0 200 OK"
               for src, dst, line in inside)
    assert not any(src == address["corp-fw"] for src, _, _ in messages)


def test_outcome_and_calls_are_recorded_like_the_overlays(run) -> None:  # noqa: ANN001
    run_dir, _ = run
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["min_online_fraction"] == 0.0  # every home PC rebooted at once
    assert summary["final_online_fraction"] == pytest.approx(5 / 6, abs=0.01)  # corp01: never
    assert summary["calls_failed"] == 0.0 and summary["supernodes_low"] is None
    steps = [json.loads(line) for line in (run_dir / "steps.jsonl").read_text().splitlines()]
    calls = {s["node"]: s["outcome"] for s in steps if s["action"] == "call"}
    relay = addresses(run_dir)["registrar"]  # each caller's own account of its media
    assert calls["home003"] == f"SIP call to home001: established, media via the relay " \
                               f"{relay}, held 3s", calls
    assert calls["home004"] == f"SIP call to home002: established, media via the relay " \
                               f"{relay}, held 3s", calls
    series = (run_dir / "series.csv").read_text()
    assert ",online_fraction," in series and ",login_server_requests_per_s," in series


def test_overload_control_answers_503_with_retry_after(make_lab) -> None:  # noqa: ANN001
    lab: RunningLab = make_lab("""
        nodes:
          internet: {kind: router}
          registrar:
            kind: registrar
            registrar: {variant: overload-control, rate: 1, retry_after: 2s}
            uplink: {to: internet}
          nat{n}: {count: 4, kind: nat, uplink: {to: internet}}
          pc{n}: {count: 4, kind: sip_ua, uplink: {to: "nat{n}"}}
        """)
    registrar = lab.plan.nodes["registrar"]
    mgmt = (registrar.mgmt_address or "").split("/")[0]
    stats: dict[str, float] = {}
    # a refused phone comes back after its own 30-60 s backoff (it ignores Retry-After),
    # and again later if another phone took the second it came back in
    deadline = time.monotonic() + 150
    while time.monotonic() < deadline:
        text = subprocess.run(["ip", "netns", "exec", lab.plan.mgmt_namespace, "curl", "-s",
                               "-m", "5", f"http://{mgmt}:9100/metrics"],
                              capture_output=True, text=True, timeout=10).stdout
        stats = {line.split()[0]: float(line.split()[1]) for line in text.splitlines()
                 if line.startswith("kamailio_")}
        if stats.get("kamailio_usrloc_registered_users") == 4:
            break
        time.sleep(1)
    # four phones at once against one request/s: some were told to come back later,
    # and all of them got in in the end. Each was challenged first; its credentialed
    # retry, milliseconds later, is over the pipe's one request/s (unless the second
    # turned in between) and is let through all the same.
    assert stats.get("kamailio_sl_5xx_replies", 0) >= 1, stats
    assert stats.get("kamailio_sl_401_replies", 0) >= 4, stats
    assert stats.get("kamailio_usrloc_registered_users") == 4, stats


@pytest.mark.parametrize(("relay", "daemon", "says"), [
    ("never", "kamailio", "ip address, interface name or hostname expected"),
    ("nat", "rtpengine", "Fatal error: Invalid interface specification: ''"),
])
def test_a_registrar_that_cannot_start_fails_up_and_leaves_nothing(
        tmp_path: Path, relay: str, daemon: str, says: str) -> None:
    name = unique_lab_name("sb")
    topology = tmp_path / "bad.yaml"
    # no link: neither Kamailio nor its relay gets an address, and each says so itself
    topology.write_text(f"name: {name}\nnodes:\n  internet: {{kind: router}}\n"
                        f"  registrar: {{kind: registrar, registrar: {{media_relay: {relay}}}}}\n")
    result = run_cli("up", str(topology), state_dir=tmp_path / "state", timeout=120)
    assert result.returncode != 0
    assert f"registrar: {daemon} exited at start:" in result.stderr
    assert says in result.stderr
    namespaces = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True,
                                check=True).stdout
    assert f"tb-{name}" not in namespaces
    assert not (tmp_path / "state" / name).exists()
