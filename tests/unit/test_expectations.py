"""`testbed check`: expectation files (errors at file:line), verdicts over small pcaps
written here with scapy for a synthetic run (lab.json, run.json, captures/index.json),
agreement with tshark on the same pcap, JUnit XML, and the tcpdump control's pure parts.

Line numbers in the YAML snippets are counted from the snippet's first line.
"""

from __future__ import annotations

import dataclasses
import http.server
import ipaddress
import json
import random
import re
import shutil
import subprocess
import sys
import textwrap
import threading
import time
import urllib.parse
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest
from scapy.all import ARP, ICMP, IP, TCP, UDP, Ether, PcapWriter  # type: ignore[import-untyped]

from testbed.capture.evaluate import check_run
from testbed.capture.expectations import FIELDS, load_expectations
from testbed.capture.model import SelectorSpec
from testbed.capture.resolve import RunData, bind, load_run
from testbed.capture.sinks import bpf_of, filter_of
from testbed.capture.tcpdump import (
    QUIET_SECONDS,
    Capture,
    CaptureSpec,
    default_interface,
    packet_limit,
    parse_stats,
    read_index,
    tcpdump_argv,
    update_index,
)
from testbed.capture.verdict import Verdict, junit_xml, report
from testbed.errors import ExpectationError, Problem
from tests.conftest import REPO, run_cli

T0 = 1000.0  # the synthetic run's start (unix time)
HAS_TSHARK = shutil.which("tshark") is not None and shutil.which("tcpdump") is not None

NODES = {  # name: (kind, group, labels, address)
    "core": ("router", None, {}, "198.18.0.1"),
    "login": ("login", None, {}, "198.18.0.2"),
    "sn1": ("peer", None, {"sn_capable": True}, "198.18.2.2"),
    "home1": ("peer", "homes", {"os": "windows"}, "10.1.0.2"),
    "home2": ("peer", "homes", {"os": "linux"}, "10.2.0.2"),
    "corp-proxy": ("proxy", "corp", {}, "10.9.0.2"),
    "corp1": ("peer", "corp", {}, "10.9.0.11"),
    "corp2": ("peer", "corp", {}, "10.9.0.12"),
    "corp-lan": ("switch", "corp", {}, None),
}
A = {name: spec[3] for name, spec in NODES.items()}


def lab_json() -> dict[str, object]:
    nodes = {}
    for name, (kind, group, labels, address) in NODES.items():
        interfaces = [{"name": "eth0", "address": f"{address}/24", "peer": "core"}] \
            if address else []
        nodes[name] = {"kind": kind, "group": group, "labels": labels,
                       "namespace": None if kind == "switch" else f"tb-x-{name}",
                       "interfaces": interfaces, "uplink": "core", "mgmt_address": None}
    return {"lab": "x", "nodes": nodes}


def mixed_packets() -> list[object]:
    """130 frames with known times (seconds after T0), sources and protocols."""
    packets = []

    def add(t: float, pkt: object) -> None:
        pkt.time = T0 + t  # type: ignore[attr-defined]
        packets.append(pkt)

    e = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
    add(0.5, Ether(dst="ff:ff:ff:ff:ff:ff") / ARP(psrc=A["home1"], pdst=A["login"]))
    add(0.6, Ether(dst="ff:ff:ff:ff:ff:ff") / ARP(psrc=A["home2"], pdst=A["login"]))
    for i in range(30):  # 10 SYN/s to the login server in seconds 1, 2, 3; each answered
        t = 1 + i * 0.1
        add(t, e / IP(src=A["home1"], dst=A["login"]) / TCP(sport=40000 + i, dport=443,
                                                            flags="S"))
        add(t + 0.01, e / IP(src=A["login"], dst=A["home1"]) / TCP(sport=443, dport=40000 + i,
                                                                  flags="SA"))
    for i in range(40):  # 20 datagrams/s of 142-byte frames from home2 to sn1, t=5..7
        add(5 + i * 0.05, e / IP(src=A["home2"], dst=A["sn1"]) / UDP(sport=5000, dport=33033)
            / (b"m" * 100))
    for i in range(20):  # corp1 goes through its proxy
        add(8 + i * 0.1, e / IP(src=A["corp1"], dst=A["corp-proxy"]) / TCP(
            sport=50000, dport=8888, flags="A"))
    for i in range(3):  # corp2 does not
        add(9.5 + i * 0.1, e / IP(src=A["corp2"], dst=A["login"]) / TCP(
            sport=50001, dport=443, flags="S" if i == 0 else "A"))
    for i in range(5):
        add(10 + i, e / IP(src=A["home1"], dst=A["home2"]) / ICMP())
    packets.sort(key=lambda p: p.time)  # type: ignore[attr-defined]
    return packets


def write_pcap(path: Path, packets: list[object]) -> None:
    writer = PcapWriter(str(path), linktype=1, sync=False)
    for pkt in packets:
        writer.write(pkt)
    writer.close()


def make_run(root: Path, captures: dict[str, list[object]] | None = None,
             prometheus_url: str | None = None) -> Path:
    """A results/<run-id>/ directory as `testbed run` writes it."""
    run = root / "run-1"
    (run / "captures").mkdir(parents=True)
    (run / "run.json").write_text(json.dumps({"run_id": "run-1", "started_unix": T0,
                                              "duration_s": 20.0, "scrape_interval_s": 1.0,
                                              "prometheus_url": prometheus_url}))
    (run / "lab.json").write_text(json.dumps(lab_json()))
    entries = []
    for name, packets in (captures or {"core-eth0": mixed_packets()}).items():
        write_pcap(run / "captures" / f"{name}.pcap", packets)
        node, _, iface = name.rpartition("-")
        entries.append({"name": name, "node": node, "interface": iface, "filter": "",
                        "snaplen": 256, "file": f"captures/{name}.pcap",
                        "packets": len(packets), "dropped": 0, "started_unix": T0,
                        "stopped_unix": T0 + 20})
    (run / "captures" / "index.json").write_text(json.dumps(entries))
    return run


def expect_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "expect.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def check(tmp_path: Path, text: str, run: Path | None = None, **kwargs: object
          ) -> list[Verdict]:
    run = run or make_run(tmp_path)
    return check_run(run, load_expectations(expect_file(tmp_path, text)), **kwargs)  # type: ignore[arg-type]


# --- malformed expectation files: every problem, at file:line ---------------------------

def problems(tmp_path: Path, text: str) -> list[Problem]:
    path = expect_file(tmp_path, text)
    with pytest.raises(ExpectationError) as info:
        load_expectations(path)
    for problem in info.value.problems:
        assert problem.file == str(path)
    return info.value.problems


@pytest.mark.parametrize(("text", "line", "message"), [
    ("- check: packets\n  from: home1\n  prot: tcp\n  min: 1\n", 3,
     "unknown key 'prot' (did you mean 'proto'?)"),
    ("- check: packets\n  min: 1\n  limit: 10Mbit\n", 3,
     "'limit' does not apply to check packets; check packets takes: capture, from,"),
    ("- name: no check\n  from: home1\n", 1, "check: is required; one of: packets,"),
    ("- check: packet\n  min: 1\n", 1, "'packet' is not allowed; choose one of: packets,"),
    ("- check: packets\n  from: home1\n", 1, "check packets needs a bound: min:, max: or both"),
    ("- check: peak_rate\n  flags: SYN !ACK FOO\n  min: 5\n", 2, "unknown TCP flag 'FOO'"),
    ("- check: packets\n  max: 3\n  window: [30s, 10s]\n", 3,
     "window ends (10s) before it starts (30s)"),
    ("- check: packets\n  max: 3\n  window: [5]\n", 3, "window is [start, end]"),
    ("- check: no_packets\n  from: {kinds: peer}\n", 2,
     "unknown key 'kinds' (did you mean 'kind'?)"),
    ("- check: no_packets\n  from: 42\n", 2, "a selector is a node name or glob"),
    ("- check: no_packets\n  proto: icmp\n  port: 7\n", 3, "icmp has no ports"),
    ("- check: via\n  from: corp1\n", 1, "check via needs through:"),
    ("- check: packets\n  min: 5\n  max: 2\n", 2, "min (5) is above max (2)"),
    ("- check: link_rate\n  limit: 10Mbps\n", 2, "'10Mbps' is ambiguous"),
    ("- check: peak_rate\n  min: 0\n", 2, "peak_rate min: must be above 0"),
    ("- check: packets\n  measure: bits/s\n  max: lots\n", 3, "expected a bit rate"),
    ("- check: packets\n  from: [home1\n", 3, "invalid YAML"),
    ("expect:\n  - check: packets\n    min: 1\n    colour: red\n", 4, "unknown key 'colour'"),
])
def test_each_malformed_expectation_is_reported_at_its_line(
        tmp_path: Path, text: str, line: int, message: str) -> None:
    found = problems(tmp_path, text)
    assert len(found) == 1, "\n".join(map(str, found))
    assert found[0].line == line, str(found[0])
    assert message in found[0].message, str(found[0])


def test_every_problem_of_a_file_is_reported_at_once(tmp_path: Path) -> None:
    found = problems(tmp_path, """\
        - check: packets
          max: 1
          prot: tcp
        - check: via
          from: corp1
        - check: peak_rate
          min: 3
          flags: SIN
        """)
    assert [p.line for p in found] == [3, 4, 8]
    text = str(ExpectationError(found))
    assert text.startswith("expectations has 3 problems:")
    assert f"{tmp_path / 'expect.yaml'}:3: [0].prot: unknown key 'prot'" in text


def test_a_mapping_without_expect_is_refused(tmp_path: Path) -> None:
    found = problems(tmp_path, "name: scenario\nsteps: []\n")
    assert "no `expect:` list here" in found[0].message


def test_a_scenario_file_carries_its_expectations(tmp_path: Path) -> None:
    path = expect_file(tmp_path, """\
        name: outage
        steps: [{action: mark, at: 1s, text: hi}]
        expect:
          - {check: no_packets, from: home2, to: login}
        """)
    [loaded] = load_expectations(path)
    assert (loaded.check, loaded.line, loaded.name) == ("no_packets", 4,
                                                        "no_packets from home2 to login")


# --- verdicts --------------------------------------------------------------------------

CORRECT = """\
- name: home1 opens 30 connections to the login server
  check: packets
  from: home1
  to: login
  proto: tcp
  port: 443
  flags: SYN !ACK
  min: 30
  max: 30
- {check: no_packets, from: home2, to: login}
- {check: via, from: corp1, through: corp-proxy}
- {check: peak_rate, to: login, flags: [SYN, "!ACK"], min: 10}
- {check: link_rate, limit: 100kbit}
- {check: packets, from: {group: homes, labels: {os: linux}}, proto: udp, measure: bytes,
   min: 5680, max: 5680}
- {check: packets, from: home2, window: [5, 6s], min: 20, max: 20}
- {check: packets, from: "home*", to: "home*", proto: icmp, measure: packets/s, min: 0.25,
   max: 0.25}
- {check: packets, max: 130, min: 130}
- {check: packets, from: home2, to: sn1, both_ways: true, measure: bits/s, max: 3kbit}
"""


@pytest.mark.parametrize("prefilter", [True, False])
def test_correct_expectations_pass(tmp_path: Path, prefilter: bool) -> None:
    verdicts = check(tmp_path, CORRECT, prefilter=prefilter)
    assert [v.status for v in verdicts] == ["pass"] * 10, report(verdicts)
    assert [v.observed for v in verdicts] == [30, 0, 0, 10, 22720, 5680, 20, 0.25, 130, 2272]
    first = verdicts[0]
    assert first.where == f"{tmp_path / 'expect.yaml'}:1"
    assert first.sources == ["captures/core-eth0.pcap"] and first.window == "whole capture"
    assert verdicts[6].window == "t=5s..6s"
    assert "all 20 packets were addressed to it" in verdicts[2].detail
    assert "busiest interval: t=1s..2s (10 packets; 31 in the window)" in verdicts[3].detail


BROKEN = """\
- {check: no_packets, from: {group: corp}, to: login}
- {check: via, from: {group: corp, kind: peer}, through: corp-proxy}
- {check: packets, from: home1, to: login, max: 10}
- {check: peak_rate, to: login, flags: SYN, min: 50}
- {check: link_rate, limit: 16kbit, tolerance: 5%}
- {check: packets, from: home1, to: sn1, min: 1}
"""


def test_broken_expectations_fail_with_what_was_seen(tmp_path: Path) -> None:
    verdicts = check(tmp_path, BROKEN)
    assert [v.status for v in verdicts] == ["fail"] * 6, report(verdicts)
    no_packets, via, count, peak, link, none = verdicts
    assert no_packets.observed == 3
    assert no_packets.detail == ("3 packets matched; first: t=9.500s 10.9.0.12:50001 "
                                 "(corp2) -> 198.18.0.2:443 (login) tcp")
    assert via.observed == 3 and via.detail.startswith(
        "3 of 23 packets went elsewhere: 198.18.0.2 (login) x3; first: t=9.500s")
    assert count.observed == 30 and count.bound == "<= 10 packets"
    assert peak.observed == 10 and peak.bound == ">= 50 packets/s"
    assert link.observed == 22720 and "busiest interval: t=5s..6s" in link.detail
    assert link.bound == "<= 16.8 kbit/s (limit 16 kbit/s + 5%)"
    assert none.observed == 0 and none.detail.startswith("0 packets matched")
    text = report(verdicts)
    assert "FAIL     no_packets from {group: corp} to login  (" in text
    assert "observed 22.72 kbit/s, expected <= 16.8 kbit/s" in text
    assert text.endswith("6 failed (of 6 expectations)\n")


def test_zero_matches_where_packets_are_counted_is_vacuous_not_pass(tmp_path: Path) -> None:
    verdicts = check(tmp_path, """\
        - {check: packets, from: home2, to: login, max: 5}
        - {check: via, from: corp2, through: corp-proxy, port: 8888}
        - {check: link_rate, limit: 1Mbit, window: [15, 20]}
        - {check: no_packets, from: home2, to: login}
        """)
    assert [v.status for v in verdicts] == ["vacuous", "vacuous", "vacuous", "pass"]
    assert "0 packets matched, so the bound holds only vacuously" in verdicts[0].detail
    assert "VACUOUS  packets from home2 to login" in report(verdicts)


def test_selector_matching_nothing_is_an_error_naming_the_expectation(tmp_path: Path) -> None:
    verdicts = check(tmp_path, """\
        - {check: packets, from: home1, max: 1000}
        - name: typo in the node name
          check: no_packets
          from: hoem1
        - {check: no_packets, to: {kind: supernode}}
        - {check: no_packets, to: corp-lan}
        """)
    assert [v.status for v in verdicts] == ["pass", "error", "error", "error"]
    assert verdicts[1].where.endswith("expect.yaml:2")
    assert verdicts[1].detail.startswith("from: 'hoem1' matches no node of the run's lab "
                                         "(nodes: core, corp-lan, corp-proxy, corp1,")
    assert "to: {kind: supernode} matches no node" in verdicts[2].detail
    assert "kinds: login, peer, proxy, router, switch" in verdicts[2].detail
    assert "corp-lan have no addresses" in verdicts[3].detail
    assert "ERROR    typo in the node name  (" in report(verdicts)


def test_missing_and_truncated_pcaps_are_errors_never_passes(tmp_path: Path) -> None:
    run = make_run(tmp_path, {"core-eth0": mixed_packets(), "login-eth0": mixed_packets()})
    (run / "captures" / "core-eth0.pcap").unlink()
    pcap = run / "captures" / "login-eth0.pcap"
    pcap.write_bytes(pcap.read_bytes()[:-30])
    text = """\
        - {check: no_packets, capture: core-eth0, from: home2, to: login}
        - {check: no_packets, capture: login, from: home2, to: login}
        - {check: packets, capture: login-eth0, max: 1000}
        - {check: packets, max: 1000}
        - {check: packets, capture: nowhere, max: 1000}
        """
    for prefilter in (True, False):
        verdicts = check(tmp_path, text, run, prefilter=prefilter)
        assert [v.status for v in verdicts] == ["error"] * 5
        assert verdicts[0].where.endswith("expect.yaml:1")
        assert ("pcap captures/core-eth0.pcap of capture 'core-eth0' is missing"
                in verdicts[0].detail)
        for verdict in verdicts[1:3]:
            assert f"pcap {pcap} is truncated" in verdict.detail, verdict.detail
        assert "the run has 2 captures (core-eth0, login-eth0); say which with capture:" \
            in verdicts[3].detail
        assert "capture: 'nowhere' is not in captures/index.json" in verdicts[4].detail


def test_promql_without_prometheus_is_not_evaluated(tmp_path: Path) -> None:
    [verdict] = check(tmp_path, "- {check: promql, query: up, min: 1}\n")
    assert verdict.status == "error"
    assert verdict.detail == ("not evaluated: no Prometheus data (run.json has no "
                              "prometheus_url)")


@pytest.fixture
def prometheus() -> Iterator[tuple[str, list[dict[str, str]]]]:
    """A stand-in Prometheus on loopback answering query_range with fixed series."""
    asked: list[dict[str, str]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            query = dict(urllib.parse.parse_qsl(urllib.parse.urlparse(self.path).query))
            asked.append(query)
            start = float(query["start"])
            values = [[start + i, str(v)] for i, v in enumerate([0.9, 0.4, 0.95])]
            result = [] if query["query"] == "absent" else [
                {"metric": {"node": "home1"}, "values": values}]
            body = json.dumps({"status": "success",
                               "data": {"resultType": "matrix", "result": result}}).encode()
            self.send_response(200)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", asked
    server.shutdown()
    server.server_close()


def test_promql_bounds_over_a_window(tmp_path: Path, prometheus: tuple[str, list[dict[str, str]]]
                                     ) -> None:
    url, asked = prometheus
    run = make_run(tmp_path, prometheus_url=url)
    verdicts = check(tmp_path, """\
        - {check: promql, query: online, window: [10, 40], min: 0.3}
        - {check: promql, query: online, min: 0.5}
        - {check: promql, query: online, reduce: last, min: 0.9, step: 5s}
        - {check: promql, query: absent, max: 1}
        """, run)
    assert [v.status for v in verdicts] == ["pass", "fail", "pass", "vacuous"]
    assert verdicts[1].observed == 0.4 and 'at t=1.0s {node="home1"}' in verdicts[1].detail
    assert float(asked[0]["start"]) == T0 + 10 and float(asked[0]["end"]) == T0 + 40
    assert float(asked[1]["end"]) == T0 + 20 and asked[1]["step"] == "1"
    assert asked[2]["step"] == "5"


def test_unreachable_prometheus_is_an_error(tmp_path: Path) -> None:
    run = make_run(tmp_path, prometheus_url="http://127.0.0.1:9")
    [verdict] = check(tmp_path, "- {check: promql, query: up, min: 1}\n", run)
    assert verdict.status == "error"
    assert "cannot reach Prometheus at http://127.0.0.1:9" in verdict.detail
    assert "testbed results serve RUN" in verdict.detail


# --- JUnit XML and the command line ---------------------------------------------------

def test_junit_xml_counts_failures_vacuous_and_errors(tmp_path: Path) -> None:
    verdicts = check(tmp_path, CORRECT + BROKEN + """\
- {check: packets, from: home2, to: login, max: 5}
- {check: no_packets, from: nobody}
""")
    path = tmp_path / "check.xml"
    junit_xml(verdicts).write(path)
    root = ET.parse(path).getroot()
    suite = root.find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("18", "7", "1")
    cases = suite.findall("testcase")
    assert len(cases) == 18
    assert cases[0].find("failure") is None and cases[0].find("system-out") is not None
    failure = cases[10].find("failure")
    assert failure is not None and failure.get("type") == "fail"
    assert "(corp2) -> 198.18.0.2:443 (login)" in (failure.get("message") or "")
    assert cases[10].get("file", "").endswith("expect.yaml") and cases[10].get("line") == "21"
    assert cases[16].find("failure").get("type") == "vacuous"  # type: ignore[union-attr]
    assert cases[17].find("error") is not None


def test_check_cli_exit_codes_report_and_junit(tmp_path: Path) -> None:
    run = make_run(tmp_path)
    good = tmp_path / "good.yaml"
    good.write_text(CORRECT)
    result = run_cli("check", str(run), str(good))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "10 passed (of 10 expectations)" in result.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text(BROKEN)
    junit = tmp_path / "out.xml"
    result = run_cli("check", str(run), str(bad), "--junit", str(junit))
    assert result.returncode == 1
    assert "FAIL     link_rate" in result.stdout
    assert ET.parse(junit).getroot().get("failures") == "6"
    malformed = tmp_path / "malformed.yaml"
    malformed.write_text("- check: packets\n  prot: tcp\n")
    result = run_cli("check", str(run), str(malformed))
    assert result.returncode == 2
    assert f"{malformed}:2: [0].prot: unknown key 'prot'" in result.stderr
    result = run_cli("check", str(tmp_path / "nope"), str(good))
    assert result.returncode == 2 and "not a run directory" in result.stderr


# --- agreement with an independent reader ---------------------------------------------

def random_packets(count: int, seed: int = 7) -> list[object]:
    rng = random.Random(seed)
    hosts = [a for a in A.values() if a]
    packets = []
    for i in range(count):
        src, dst = rng.sample(hosts, 2)
        kind = rng.random()
        ip = Ether() / IP(src=src, dst=dst)
        if kind < 0.4:
            pkt = ip / TCP(sport=rng.choice([5000, rng.randint(1024, 65535)]),
                           dport=rng.choice([443, 80, 8888]),
                           flags=rng.choice(["S", "SA", "A", "PA", "F", "R"]))
        elif kind < 0.8:
            pkt = ip / UDP(sport=rng.choice([5000, 33033]), dport=rng.choice([33033, 53]))
            pkt = pkt / (b"x" * rng.randint(0, 300))
        elif kind < 0.95:
            pkt = ip / ICMP()
        else:
            pkt = Ether() / ARP(psrc=src, pdst=dst)
        pkt.time = T0 + i * 0.01
        packets.append(pkt)
    return packets


AGREEMENT = [  # (expectation, the same question as a Wireshark display filter)
    ("{check: packets, from: {kind: peer}, to: login, proto: tcp, port: 443, flags: SYN !ACK,"
     " min: 0}",
     "ip.src in {198.18.2.2, 10.1.0.2, 10.2.0.2, 10.9.0.11, 10.9.0.12} && "
     "ip.dst == 198.18.0.2 "
     "&& tcp.dstport == 443 && tcp.flags.syn == 1 && tcp.flags.ack == 0"),
    ("{check: packets, from: {group: corp}, proto: udp, port: 33033, min: 0}",
     "ip.src in {10.9.0.2, 10.9.0.11, 10.9.0.12} && udp.dstport == 33033"),
    ("{check: packets, to: [home1, home2], proto: icmp, min: 0}",
     "ip.dst in {10.1.0.2, 10.2.0.2} && icmp"),
    ("{check: packets, from: sn1, to: login, both_ways: true, min: 0}",
     "(ip.src == 198.18.2.2 && ip.dst == 198.18.0.2) || "
     "(ip.src == 198.18.0.2 && ip.dst == 198.18.2.2)"),
    ("{check: packets, proto: tcp, src_port: 5000, min: 0}", "tcp.srcport == 5000"),
    ("{check: packets, proto: udp, src_port: 5000, min: 0}", "udp.srcport == 5000"),
    ("{check: packets, min: 0}", "frame"),
    ("{check: packets, from: home1, measure: bytes, min: 0}", "ip.src == 10.1.0.2"),
]


def tshark(pcap: Path, display_filter: str, field: str = "frame.number") -> list[str]:
    result = subprocess.run(["tshark", "-n", "-r", str(pcap), "-Y", display_filter, "-T",
                             "fields", "-e", field], capture_output=True, text=True,
                            check=True, timeout=60)
    return result.stdout.split()


@pytest.mark.skipif(not HAS_TSHARK, reason="needs tshark and tcpdump (scripts/setup.sh)")
def test_counts_equal_what_tshark_and_tcpdump_count_on_the_same_pcap(tmp_path: Path) -> None:
    """tshark is the independent reader; its display filters are written here by hand
    (tshark cannot apply a BPF to a file). tcpdump applies the BPF expressions `check`
    uses as its pre-filter, which must select exactly the same packets here."""
    run = make_run(tmp_path, {"core-eth0": random_packets(3000)})
    pcap = run / "captures" / "core-eth0.pcap"
    text = "".join(f"- {e}\n" for e, _ in AGREEMENT)
    expectations = load_expectations(expect_file(tmp_path, text))
    expected = [sum(map(int, tshark(pcap, display, "frame.len"))) if "bytes" in e
                else len(tshark(pcap, display)) for e, display in AGREEMENT]
    assert all(expected), expected
    for prefilter in (True, False):
        verdicts = check_run(run, expectations, prefilter=prefilter)
        assert [v.observed for v in verdicts] == expected
    data = load_run(run)
    for expectation, (e, _), count in zip(expectations, AGREEMENT, expected, strict=True):
        bpf = bpf_of(filter_of(bind(expectation, data)))
        if expectation.spec.both_ways or bpf is None or "src port" in bpf or "bytes" in e:
            continue  # one direction only; `src port` in BPF also matches sctp
        lines = subprocess.run(["tcpdump", "-n", "-r", str(pcap), bpf], capture_output=True,
                               text=True, check=True).stdout.splitlines()
        assert len(lines) == count, bpf


# --- the tcpdump control's pure parts ---------------------------------------------------

def test_tcpdump_argv_caps_and_namespace() -> None:
    spec = CaptureSpec(node="login", filter="tcp port 443", snaplen=128, max_packets=1000,
                       max_seconds=30, max_megabytes=1)
    argv = tcpdump_argv(spec, "tb-x-login", "eth0", Path("/r/captures/login-eth0.pcap"))
    assert argv[:7] == ["setpriv", "--pdeathsig", "KILL", "ip", "netns", "exec",
                        "tb-x-login"]
    assert argv[7:11] == ["timeout", "--signal=INT", "30", "setpriv"]
    tail = argv[argv.index("tcpdump"):]
    assert tail == ["tcpdump", "-i", "eth0", "-n", "-U", "--immediate-mode", "-Z", "root",
                    "-s", "128", "-w",
                    "/r/captures/login-eth0.pcap", "-c", "1000", "tcp port 443"]
    assert packet_limit(CaptureSpec(node="a", snaplen=240, max_megabytes=1)) == 4095
    plain = tcpdump_argv(CaptureSpec(node="a"), "ns", "eth1", Path("x.pcap"))
    assert "timeout" not in plain and "-c" not in plain and plain[-1] == "x.pcap"


def test_tcpdump_statistics_are_parsed() -> None:
    text = ("tcpdump: listening on eth0, link-type EN10MB (Ethernet), snapshot length 256 "
            "bytes\n1234 packets captured\n1300 packets received by filter\n"
            "66 packets dropped by kernel\n")
    assert parse_stats(text) == (1234, 66)
    assert parse_stats("1 packet captured\n1 packet received by filter\n"
                       "0 packets dropped by kernel\n") == (1, 0)
    assert parse_stats("tcpdump: eth9: No such device exists\n") == (None, None)


def test_default_interface_is_the_uplink() -> None:
    node = {"uplink": "core", "interfaces": [{"name": "eth1", "peer": "lan"},
                                             {"name": "eth0", "peer": "core"}]}
    assert default_interface(node) == "eth0"
    assert default_interface({"interfaces": [{"name": "eth3", "peer": "x"}]}) == "eth3"
    assert default_interface({"interfaces": []}) is None


def test_stop_lets_the_capture_drain_before_interrupting_it(tmp_path: Path) -> None:
    """A stand-in for tcpdump still writing (packets it had queued): stop() interrupts it
    only once the pcap has been quiet, so the last write lands before the SIGINT."""
    pcap, log = tmp_path / "x.pcap", tmp_path / "x.log"
    writer = ("import signal, sys, time\n"
              "signal.signal(signal.SIGINT, lambda *a: sys.exit(0))\n"
              "for _ in range(6):\n"
              "    open(sys.argv[1], 'ab').write(b'p' * 100); time.sleep(0.05)\n"
              "time.sleep(30)\n")
    with log.open("wb") as err:
        proc = subprocess.Popen([sys.executable, "-c", writer, str(pcap)], stderr=err)
    capture = Capture(spec=CaptureSpec(node="a"), name="a-eth0", namespace="ns",
                      interface="eth0", path=pcap, log=log, proc=proc,
                      started_unix=time.time())
    deadline = time.monotonic() + 20  # a loaded machine starts the stand-in slowly
    while not (pcap.exists() and pcap.stat().st_size) and time.monotonic() < deadline:
        time.sleep(0.01)
    began = time.monotonic()
    capture.stop()
    assert pcap.stat().st_size == 600  # every write made it before the interrupt
    assert time.monotonic() - began >= QUIET_SECONDS
    assert proc.returncode == 0


def test_a_shared_private_address_is_named_after_the_captured_node_or_not_guessed() -> None:
    def node(address: str) -> dict[str, object]:
        return {"interfaces": [{"address": f"{address}/24"}]}
    nodes = {"home1": node("192.168.1.2"), "home2": node("192.168.1.2"),
             "home3": node("192.168.1.2"), "sn1": node("198.18.0.6")}
    run = RunData(Path("."), {}, nodes, [])
    private = ipaddress.IPv4Address("192.168.1.2").packed
    public = ipaddress.IPv4Address("198.18.0.6").packed
    assert run.owners(["home2"])[private] == "home2"
    assert run.owners()[private] == "home1 or 2 other nodes"
    assert run.owners(["home2"])[public] == run.owners()[public] == "sn1"


def test_index_entries_are_added_and_replaced_by_name(tmp_path: Path) -> None:
    index = tmp_path / "captures" / "index.json"
    update_index(index, {"name": "a", "packets": 1}, {"name": "b", "packets": 2})
    update_index(index, {"name": "a", "packets": 3})
    assert read_index(index) == [{"name": "a", "packets": 3}, {"name": "b", "packets": 2}]


def test_every_expectation_and_capture_key_is_documented() -> None:
    text = (REPO / "docs" / "expectations.md").read_text()
    documented = set(re.findall(r"`([a-z_]+)`", text))
    for name in FIELDS:
        assert name in documented, f"expectation key {name} is not in docs/expectations.md"
    for cls in (SelectorSpec, CaptureSpec):
        for field in dataclasses.fields(cls):
            assert field.name in documented, f"{cls.__name__}.{field.name} is not documented"


@pytest.mark.skipif(not HAS_TSHARK, reason="needs tshark (to write pcapng) and tcpdump")
def test_pcapng_captures_are_read_through_tcpdump(tmp_path: Path) -> None:
    run = make_run(tmp_path)
    pcap = run / "captures" / "core-eth0.pcap"
    converted = subprocess.run(["tshark", "-r", str(pcap), "-F", "pcapng", "-w",
                                str(pcap) + "ng"], capture_output=True, timeout=60)
    assert converted.returncode == 0, converted.stderr
    Path(str(pcap) + "ng").replace(pcap)
    assert pcap.read_bytes()[:4] == b"\x0a\x0d\x0d\x0a"
    for prefilter in (True, False):
        verdicts = check_run(run, load_expectations(expect_file(tmp_path, CORRECT)),
                             prefilter=prefilter)
        assert [v.status for v in verdicts] == ["pass"] * 10, report(verdicts)


def sip_exchange() -> list[object]:
    """The login server challenges home1 (401, then 200) but lets home2 in at once."""
    e = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
    packets = []
    for t, dst, line in ((1.0, "home1", b"SIP/2.0 401 Unauthorized"),
                         (1.2, "home1", b"SIP/2.0 200 OK"),
                         (1.5, "home1", b"SIP/2.0 200 OK"),
                         (2.0, "home2", b"SIP/2.0 200 OK"),
                         (2.5, "home2", b"SIP/2.0 401 Unauthorized")):
        pkt = e / IP(src=A["login"], dst=A[dst]) / UDP(sport=5060, dport=5060) / (
            line + b"\r\nVia: SIP/2.0/UDP x\r\n\r\n")
        pkt.time = T0 + t
        packets.append(pkt)
    return packets


@pytest.mark.parametrize("prefilter", [True, False])
def test_order_checks_that_each_flow_saw_first_before_then(tmp_path: Path,
                                                            prefilter: bool) -> None:
    run = make_run(tmp_path, {"login-eth0": sip_exchange()})
    verdicts = check(tmp_path, """\
        - {check: order, capture: login-eth0, from: login, to: home1, proto: udp,
           first: SIP/2.0 401, then: SIP/2.0 200}
        - {check: order, capture: login-eth0, from: login, first: SIP/2.0 401,
           then: SIP/2.0 200}
        - {check: order, capture: login-eth0, from: login, to: home1, first: SIP/2.0 401,
           then: SIP/2.0 200, min: 2}
        - {check: order, capture: login-eth0, from: login, first: SIP/2.0 401,
           then: SIP/2.0 486}
        """, run, prefilter=prefilter)
    assert [v.status for v in verdicts] == ["pass", "fail", "fail", "fail"], report(verdicts)
    home1, both, two, none = verdicts
    assert home1.observed == 1 and home1.detail.startswith(
        "1 flows in order, e.g. 198.18.0.2 (login) -> 10.1.0.2 (home1): 'SIP/2.0 401' at "
        "t=1.000s, 'SIP/2.0 200' at t=1.200s")
    assert both.detail == ("1 flows got 'SIP/2.0 200' with no 'SIP/2.0 401' before it; "
                           "first: t=2.000s 198.18.0.2:5060 (login) -> 10.2.0.2:5060 (home2) "
                           "udp")
    assert two.bound == ">= 2 flows with 'SIP/2.0 401' before 'SIP/2.0 200', none without"
    assert none.detail.startswith("no packet beginning with 'SIP/2.0 486' among the 5")


def test_order_needs_first_and_then(tmp_path: Path) -> None:
    found = [str(p) for p in problems(tmp_path, "- {check: order, first: A}\n")]
    assert any("check order needs then:" in p for p in found), found
