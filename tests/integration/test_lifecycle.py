"""The lab lifecycle through the real command line: up, inspect, exec, down.

`down` removes everything `up` made (namespaces, processes, state) and nothing else, even
after `up` was killed half-way; a failure or a signal during `up` rolls back; labs live
side by side; a second `up` of a running lab is refused without touching it.

Processes started by a lab carry a per-test token in their environment
(TB_TEST_TOKEN), so a leak is found by looking at /proc, never by process name.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import REPO, run_cli, unique_lab_name

pytestmark = pytest.mark.root

# --- helpers --------------------------------------------------------------------------


def write_topology(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(f"name: {name}\n{body}")
    return path


def all_namespaces() -> list[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True,
                         check=True).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def lab_namespaces(lab: str) -> list[str]:
    return sorted(ns for ns in all_namespaces() if ns.startswith(f"tb-{lab}-"))


def token_pids(token: str) -> list[int]:
    """Live (non-zombie) processes whose environment holds TB_TEST_TOKEN=token."""
    needle = f"TB_TEST_TOKEN={token}".encode()
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if needle in environ.split(b"\0") and state != "Z":
            pids.append(int(entry.name))
    return pids


def start_time(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
    except OSError:
        return None


def running(pid: int, started: int) -> bool:
    """The very process that had this start time is still there (and not a zombie)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return start_time(pid) == started and state != "Z"


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def inspect_json(state_dir: Path, lab: str) -> dict:
    result = run_cli("inspect", "--lab", lab, "--json", state_dir=state_dir)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def service_pids(report: dict) -> dict[int, int]:
    """pid -> start time of every service the lab runs (start time read now, while alive)."""
    pids = {s["pid"]: start_time(s["pid"])
            for node in report["nodes"].values() for s in node["services"]}
    assert all(started is not None for started in pids.values()), pids
    return pids  # type: ignore[return-value]


def ping(state_dir: Path, lab: str, node: str, address: str) -> bool:
    return run_cli("exec", "--lab", lab, node, "--", "ping", "-c", "1", "-W", "2", address,
                   state_dir=state_dir).returncode == 0


def address_of(report: dict, node: str) -> str:
    return report["nodes"][node]["interfaces"][0]["address"].split("/")[0]


SYSCTLS = ("net/ipv4/ip_forward", "net/ipv6/conf/all/disable_ipv6",
           "net/ipv6/conf/default/disable_ipv6", "net/netfilter/nf_conntrack_udp_timeout",
           "net/netfilter/nf_conntrack_udp_timeout_stream")


# Every device name a lab creates (node side eth<N>/mgmt0; fabric side p<N>, s<N>a/b, br<N>;
# management side m<N> and the bridge `mgmt`). The machine's own eth0 matches too, so a
# qdisc or address put on it by mistake shows.
LAB_DEVICE = re.compile(r"eth\d+|mgmt\d*|p\d+|s\d+[ab]|br\d+|m\d+")


def root_snapshot() -> dict[str, object]:
    """What a leak of a lab into the machine's own namespace would change.

    Others use this machine at the same time (other labs, Mininet runs that put their
    switch ports in the root namespace), so the comparison is keyed on what the testbed
    can create: devices with its names (and their qdiscs, filters, addresses, routes), nft
    tables named testbed*, the sysctls it writes, and named namespaces outside the tb-
    convention (each test also checks that none of its own lab's namespaces are left)."""
    def out(*argv: str) -> str:
        return subprocess.run(argv, capture_output=True, text=True, check=True).stdout

    links = {m.group(1): line for line in out("ip", "-o", "link").splitlines()
             if (m := re.match(r"\d+: ([^:@]+)[:@]", line))}
    ours = sorted(dev for dev in links if LAB_DEVICE.fullmatch(dev))

    def on_our_devices(text: str) -> list[str]:
        return sorted(line for line in text.splitlines()
                      if any(re.search(rf"\bdev {re.escape(d)}\b", line) for d in ours)
                      or re.search(r"\bdev (?:" + LAB_DEVICE.pattern + r")\b", line))

    snapshot: dict[str, object] = {
        "ip -o link (lab names)": [links[dev] for dev in ours],
        "ip -o addr (lab names)": sorted(
            line for line in out("ip", "-o", "addr").splitlines()
            if line.split()[1].split("@")[0] in ours),
        "ip route (lab devices)": on_our_devices(out("ip", "route", "show", "table", "all")),
        "tc qdisc (lab devices)": on_our_devices(out("tc", "qdisc", "show")),
        "tc filter (lab devices)": [
            out("tc", "filter", "show", "dev", dev, where)
            for dev in ours for where in ("ingress", "egress")],
        "nft testbed tables": re.findall(r"^table \S+ testbed\S*", out("nft", "list", "ruleset"),
                                         re.MULTILINE),
        "ip netns list (non-lab)": sorted(
            ns for ns in all_namespaces() if not ns.startswith("tb-")),
    }
    for key in SYSCTLS:
        path = Path("/proc/sys") / key
        snapshot[key] = path.read_text() if path.exists() else "(absent)"
    return snapshot


def start_up(topology: Path, state_dir: Path) -> subprocess.Popen[str]:
    """`testbed up` in the background, as a user's shell would start it."""
    env = {**os.environ, "TESTBED_STATE_DIR": str(state_dir)}
    return subprocess.Popen([sys.executable, "-m", "testbed", "up", str(topology), "--quiet"],
                            cwd=REPO, env=env, text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)


def journal_processes(state_dir: Path, lab: str) -> int:
    try:
        text = (state_dir / lab / "journal.jsonl").read_text()
    except FileNotFoundError:
        return 0
    return text.count('"op": "process"')


def big_topology(token: str, hosts: int = 300) -> str:
    """A lab that takes a few seconds to build: hosts on one switch, each running a
    process that carries the test's token."""
    return (
        "nodes:\n"
        "  core: {kind: router}\n"
        "  lan: {kind: switch, uplink: {to: core}}\n"
        "  h{n:03}:\n"
        f"    count: {hosts}\n"
        "    kind: host\n"
        "    uplink: {to: lan}\n"
        '    command: [sleep, "600"]\n'
        f"    env: {{TB_TEST_TOKEN: {token}}}\n"
    )


@pytest.fixture
def token() -> str:
    return secrets.token_hex(8)


@pytest.fixture
def labs(state_root: Path):
    """Lab names a test brings up; whatever is still up at the end is taken down."""
    names: list[str] = []
    yield names
    for name in names:
        if lab_namespaces(name) or (state_root / name).exists():
            run_cli("down", name, "--quiet", state_dir=state_root)


def stop_background(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.communicate(timeout=30)


# --- a/b: up, down, and down again --------------------------------------------------

SMALL = """
nodes:
  core: {kind: router}
  edge:
    kind: nat
    nat: {udp_timeout: 17s}  # a conntrack value the root namespace does not have
    uplink: {to: core, up: 512kbit, down: 8Mbit, loss: 1%}
  home: {kind: host, uplink: {to: edge}}
  lan: {kind: switch, uplink: {to: core}}
  a:
    kind: peer
    uplink: {to: lan, bandwidth: 10Mbit}
    command: [sleep, "600"]
    env: {TB_TEST_TOKEN: "@TOKEN@"}
  b:
    kind: host
    uplink: {to: lan}
    command: [sleep, "600"]
    env: {TB_TEST_TOKEN: "@TOKEN@"}
  corp-fw:
    kind: nat
    firewall: {egress: proxy-only, proxy: corp-proxy}
    uplink: {to: core}
  corp-lan: {kind: switch, uplink: {to: corp-fw}}
  corp-proxy: {kind: proxy, uplink: {to: corp-lan}}
"""
SMALL_NAMESPACES = 9  # core edge home a b corp-fw corp-proxy + fabric + mgmt


def test_up_then_down_removes_everything_and_leaks_nothing_into_the_root_namespace(
        tmp_path: Path, state_root: Path, token: str, labs: list[str]) -> None:
    name = unique_lab_name("lc")
    labs.append(name)
    topology = write_topology(tmp_path, name, SMALL.replace("@TOKEN@", token))
    before = root_snapshot()

    up = run_cli("up", str(topology), state_dir=state_root)
    assert up.returncode == 0, up.stderr
    assert f"lab {name!r} is up" in up.stdout
    assert len(lab_namespaces(name)) == SMALL_NAMESPACES
    report = inspect_json(state_root, name)
    pids = service_pids(report)
    assert len(pids) == 3  # a, b (sleep) and corp-proxy (tinyproxy)
    assert all(running(pid, started) for pid, started in pids.items())
    assert sorted(token_pids(token)) == sorted(
        s["pid"] for n in ("a", "b") for s in report["nodes"][n]["services"])
    # a process started inside the lab by hand (not by `up`) is stopped by `down` too
    stray = subprocess.Popen(["ip", "netns", "exec", f"tb-{name}-home", "sleep", "600"])
    try:
        # the lab works, and it lives entirely in its own namespaces
        assert ping(state_root, name, "a", address_of(report, "b"))
        assert ping(state_root, name, "home", address_of(report, "a"))
        sysctl = run_cli("exec", "edge", "--", "cat",
                         "/proc/sys/net/netfilter/nf_conntrack_udp_timeout",
                         state_dir=state_root)
        assert sysctl.stdout.strip() == "17"  # set in the NAT, and only there:
        assert root_snapshot() == before

        down = run_cli("down", name, state_dir=state_root)
        assert down.returncode == 0, down.stderr
        assert f"lab {name!r} is down" in down.stdout
        stray.wait(timeout=5)
    finally:
        if stray.poll() is None:
            stray.kill()
            stray.wait(5)
    assert lab_namespaces(name) == []
    assert not any(running(pid, started) for pid, started in pids.items())
    assert token_pids(token) == []
    assert not (state_root / name).exists()
    assert root_snapshot() == before


def test_down_is_idempotent(tmp_path: Path, state_root: Path, labs: list[str]) -> None:
    name = unique_lab_name("lc")
    labs.append(name)
    topology = write_topology(tmp_path, name, "nodes:\n  core: {kind: router}\n"
                                              "  a: {kind: host, uplink: {to: core}}\n")
    assert run_cli("up", str(topology), "--quiet", state_dir=state_root).returncode == 0
    first = run_cli("down", name, state_dir=state_root)
    assert first.returncode == 0 and "is down" in first.stdout, first.stderr
    for args in ([name], [str(topology)], []):  # by name, by topology file, the only lab
        again = run_cli("down", *args, state_dir=state_root)
        assert again.returncode == 0, again.stderr
        assert "nothing to do" in again.stdout, again.stdout
        assert "is down" not in again.stdout
    assert lab_namespaces(name) == []


# --- c: SIGKILL half-way, then down ---------------------------------------------------

@pytest.mark.parametrize("stage", ["namespaces", "services"])
def test_down_cleans_up_after_up_was_killed_half_way(tmp_path: Path, state_root: Path,
                                                     token: str, labs: list[str],
                                                     stage: str) -> None:
    name = unique_lab_name("kill")
    labs.append(name)
    topology = write_topology(tmp_path, name, big_topology(token))
    up = start_up(topology, state_root)
    try:
        if stage == "namespaces":  # still creating namespaces and links
            wait_until(lambda: len(lab_namespaces(name)) > 0, 30, "the first namespaces")
        else:  # some of the 300 services are running
            wait_until(lambda: journal_processes(state_root, name) >= 30, 30,
                       "the first services")
        up.send_signal(signal.SIGKILL)
        assert up.wait(timeout=10) == -signal.SIGKILL
    finally:
        stop_background(up)
    assert lab_namespaces(name), "up was killed before it created anything"
    if stage == "services":
        assert token_pids(token), "no services were running when up was killed"

    down = run_cli("down", name, state_dir=state_root)
    assert down.returncode == 0, down.stderr
    assert lab_namespaces(name) == []
    assert token_pids(token) == []
    assert not (state_root / name).exists()
    # and nothing shows up afterwards (e.g. from a tool `up` had started)
    time.sleep(1)
    assert lab_namespaces(name) == []
    assert token_pids(token) == []


# --- d: two labs side by side ---------------------------------------------------------

PAIR = """
nodes:
  core: {kind: router}
  x: {kind: host, uplink: {to: core}, command: [sleep, "600"]}
  y: {kind: host, uplink: {to: core}}
"""


def test_two_labs_side_by_side(tmp_path: Path, state_root: Path, labs: list[str]) -> None:
    one, two = unique_lab_name("one"), unique_lab_name("two")
    labs += [one, two]
    for name in (one, two):
        up = run_cli("up", str(write_topology(tmp_path, name, PAIR)), "--quiet",
                     state_dir=state_root)
        assert up.returncode == 0, up.stderr
    reports = {name: inspect_json(state_root, name) for name in (one, two)}
    # the same addresses in both labs: each lab is its own world
    assert address_of(reports[one], "y") == address_of(reports[two], "y")
    for name in (one, two):
        assert ping(state_root, name, "x", address_of(reports[name], "y"))
    pids_two = service_pids(reports[two])
    namespaces_two = lab_namespaces(two)
    assert len(namespaces_two) == 5

    down = run_cli("down", one, state_dir=state_root)
    assert down.returncode == 0, down.stderr
    assert lab_namespaces(one) == []
    assert not any(running(p, s) for p, s in service_pids(reports[one]).items())
    # the other lab is untouched and still works
    assert lab_namespaces(two) == namespaces_two
    assert all(running(p, s) for p, s in pids_two.items())
    assert ping(state_root, two, "x", address_of(reports[two], "y"))
    only = run_cli("inspect", "--json", state_dir=state_root)  # now the only lab: no --lab
    assert only.returncode == 0 and json.loads(only.stdout)["lab"] == two
    assert run_cli("down", two, "--quiet", state_dir=state_root).returncode == 0
    assert lab_namespaces(two) == []


# --- e: failure and signals during up roll back ----------------------------------------

def test_failing_service_rolls_back_and_names_the_node_and_command(
        tmp_path: Path, state_root: Path, token: str, labs: list[str]) -> None:
    name = unique_lab_name("fail")
    labs.append(name)
    topology = write_topology(tmp_path, name, f"""
nodes:
  core: {{kind: router}}
  good: {{kind: peer, uplink: {{to: core}}, command: [sleep, "600"],
          env: {{TB_TEST_TOKEN: {token}}}}}
  broken: {{kind: peer, uplink: {{to: core}}, command: /nonexistent/binary --flag}}
  later: {{kind: peer, uplink: {{to: core}}, command: [sleep, "600"],
           env: {{TB_TEST_TOKEN: {token}}}}}
""")
    before = root_snapshot()
    up = run_cli("up", str(topology), state_dir=state_root)
    assert up.returncode == 1, up.stdout + up.stderr
    error = up.stderr.strip().splitlines()
    message = next(line for line in error if line.startswith("error:"))
    assert "broken" in message and "/nonexistent/binary" in message, up.stderr
    assert "Traceback" not in up.stderr
    assert lab_namespaces(name) == []
    assert token_pids(token) == []  # `good` was started, then stopped by the rollback
    assert not (state_root / name).exists()
    assert root_snapshot() == before
    # control: without the broken node the same lab comes up
    ok = write_topology(tmp_path, name, f"""
nodes:
  core: {{kind: router}}
  good: {{kind: peer, uplink: {{to: core}}, command: [sleep, "600"],
          env: {{TB_TEST_TOKEN: {token}}}}}
""")
    assert run_cli("up", str(ok), "--quiet", state_dir=state_root).returncode == 0
    assert len(token_pids(token)) == 1
    assert run_cli("down", name, "--quiet", state_dir=state_root).returncode == 0


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
@pytest.mark.parametrize("stage", ["links", "services"])
def test_signal_during_up_rolls_back(tmp_path: Path, state_root: Path, token: str,
                                     labs: list[str], sig: signal.Signals,
                                     stage: str) -> None:
    name = unique_lab_name("sig")
    labs.append(name)
    topology = write_topology(tmp_path, name, big_topology(token))
    up = start_up(topology, state_root)
    try:
        if stage == "links":
            wait_until(lambda: len(lab_namespaces(name)) > 100, 30, "namespaces")
        else:
            wait_until(lambda: journal_processes(state_root, name) >= 30, 30, "services")
        up.send_signal(sig)
        _, stderr = up.communicate(timeout=60)
    finally:
        stop_background(up)
    assert up.returncode == 130, stderr
    assert f"interrupted: lab {name!r} was rolled back" in stderr, stderr
    # no crash; the only tracebacks allowed are the interpreter's "Exception ignored"
    # notes, printed when the signal lands in an at-fork hook (and is raised again later)
    assert stderr.count("Traceback") == stderr.count("Exception ignored in"), stderr
    assert lab_namespaces(name) == []
    assert token_pids(token) == []
    assert not (state_root / name).exists()


# --- f: a second up of a running lab --------------------------------------------------

def test_second_up_is_refused_and_leaves_the_running_lab_alone(
        tmp_path: Path, state_root: Path, labs: list[str]) -> None:
    name = unique_lab_name("dup")
    labs.append(name)
    topology = write_topology(tmp_path, name, PAIR)
    assert run_cli("up", str(topology), "--quiet", state_dir=state_root).returncode == 0
    report = inspect_json(state_root, name)
    pids = service_pids(report)
    namespaces = lab_namespaces(name)
    journal = (state_root / name / "journal.jsonl").read_bytes()
    summary = (state_root / name / "lab.json").read_bytes()

    other_root = tmp_path / "other-state"  # e.g. a user who forgot TESTBED_STATE_DIR
    for where in (state_root, other_root):
        again = run_cli("up", str(topology), state_dir=where)
        assert again.returncode == 1, again.stdout + again.stderr
        assert "already" in again.stderr and f"testbed down {name}" in again.stderr, \
            again.stderr
        assert "Traceback" not in again.stderr
    assert not (other_root / name).exists()

    assert lab_namespaces(name) == namespaces
    assert all(running(p, s) for p, s in pids.items())
    assert (state_root / name / "journal.jsonl").read_bytes() == journal
    assert (state_root / name / "lab.json").read_bytes() == summary
    assert ping(state_root, name, "x", address_of(report, "y"))
    assert run_cli("down", name, "--quiet", state_dir=state_root).returncode == 0


# --- g: exec and inspect --------------------------------------------------------------

INSPECTED = """
nodes:
  core: {kind: router}
  lan: {kind: switch, uplink: {to: core}}
  pc: {kind: host, uplink: {to: lan}}
  srv: {kind: peer, uplink: {to: core}, command: [sleep, "600"]}
  home-nat: {kind: nat, nat: {type: symmetric}, uplink: {to: core}}
  home: {kind: host, uplink: {to: home-nat}}
"""


def test_exec_and_inspect(tmp_path: Path, state_root: Path, labs: list[str]) -> None:
    name = unique_lab_name("ex")
    labs.append(name)
    assert run_cli("up", str(write_topology(tmp_path, name, INSPECTED)), "--quiet",
                   state_dir=state_root).returncode == 0
    report = inspect_json(state_root, name)
    kinds = {n: v["kind"] for n, v in report["nodes"].items()}
    assert kinds == {"core": "router", "lan": "switch", "pc": "host", "srv": "peer",
                     "home-nat": "nat", "home": "host"}
    assert report["nodes"]["home-nat"]["nat_type"] == "symmetric"
    assert report["nodes"]["lan"]["namespace"] is None
    assert report["status"] == "up"
    [service] = report["nodes"]["srv"]["services"]
    assert service["alive"] and start_time(service["pid"]) is not None

    # exec runs in the node: it sees exactly the addresses inspect reports for it
    for node in ("pc", "srv", "home", "core"):
        shown = run_cli("exec", node, "--", "ip", "-o", "-4", "addr", "show",
                        state_dir=state_root)  # the only lab: no --lab needed
        assert shown.returncode == 0, shown.stderr
        actual = set(re.findall(r"inet (\S+) .* (eth\d+)", shown.stdout))
        expected = {(i["address"], i["name"]) for i in report["nodes"][node]["interfaces"]}
        assert actual == expected, (node, shown.stdout)
    # ... and its exit code is the command's
    assert run_cli("exec", "--lab", name, "pc", "--", "sh", "-c", "exit 7",
                   state_dir=state_root).returncode == 7
    assert run_cli("exec", "--lab", name, "pc", "--", "true",
                   state_dir=state_root).returncode == 0
    assert ping(state_root, name, "home", address_of(report, "pc"))
    assert not ping(state_root, name, "pc", "192.0.2.1")  # nothing outside the lab
    # the node's namespace, not the machine's: a host has no forwarding
    forwarding = run_cli("exec", "pc", "--", "cat", "/proc/sys/net/ipv4/ip_forward",
                         state_dir=state_root)
    assert forwarding.stdout.strip() == "0"
    assert run_cli("exec", "core", "--", "cat", "/proc/sys/net/ipv4/ip_forward",
                   state_dir=state_root).stdout.strip() == "1"

    missing = run_cli("exec", "nosuch", "--", "true", state_dir=state_root)
    assert missing.returncode == 1 and "no node 'nosuch'" in missing.stderr
    switch = run_cli("exec", "lan", "--", "true", state_dir=state_root)
    assert switch.returncode == 1 and "no namespace" in switch.stderr
    nocmd = run_cli("exec", "pc", "--", "/nonexistent/cmd", state_dir=state_root)
    assert nocmd.returncode != 0 and "/nonexistent/cmd" in nocmd.stderr
    assert "Traceback" not in missing.stderr + switch.stderr + nocmd.stderr

    # the table: one row per node with its kind and address
    table = run_cli("inspect", state_dir=state_root)
    assert table.returncode == 0, table.stderr
    rows = {line.split()[0]: line.split() for line in table.stdout.splitlines()[1:]
            if line.strip() and not line.startswith("lab ")}
    assert set(rows) == set(kinds)
    for node, kind in kinds.items():
        assert rows[node][1].startswith(kind)
        if report["nodes"][node]["interfaces"]:
            assert address_of(report, node) in " ".join(rows[node])
    assert f"main:{service['pid']}" in rows["srv"]  # the service, with its live pid
    only_hosts = run_cli("inspect", "--json", "--kind", "host", state_dir=state_root)
    assert set(json.loads(only_hosts.stdout)["nodes"]) == {"pc", "home"}
