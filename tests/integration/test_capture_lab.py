"""Captures on a real lab: tcpdump inside a node's namespace, its index entry, and
`testbed check` over the pcap, each count compared with tshark reading the same file."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from testbed.capture.tcpdump import (
    CaptureSpec,
    default_interface,
    read_index,
    start_capture,
    update_index,
)
from tests.conftest import REPO, RunningLab, run_cli

pytestmark = pytest.mark.root

TOPOLOGY = """
nodes:
  core: {kind: router}
  a: {kind: host, uplink: {to: core, bandwidth: 10Mbit}}
  b: {kind: host, uplink: {to: core, bandwidth: 10Mbit}}
"""

SEND_UDP = """
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(int(sys.argv[2])):
    s.sendto(b"x" * 100, (sys.argv[1], 9999))
    time.sleep(0.01)
"""


def tshark_count(pcap: Path, display_filter: str = "") -> int:
    argv = ["tshark", "-n", "-r", str(pcap), "-T", "fields", "-e", "frame.number"]
    if display_filter:
        argv += ["-Y", display_filter]
    result = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=60)
    return len(result.stdout.split())


LISTEN_UDP = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 9999))
print("ready", flush=True)
sys.stdin.read()
"""


def traffic(lab: RunningLab) -> None:
    """5 pings a->b, 20 UDP datagrams a->b:9999 (to a listener: no ICMP errors come back),
    3 pings b->a: 8 ICMP packets each way, 20 UDP one way."""
    listener = lab.popen("b", sys.executable, "-c", textwrap.dedent(LISTEN_UDP),
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert listener.stdout is not None and listener.stdout.readline() == "ready\n"
        assert lab.exec("a", "ping", "-c", "5", "-i", "0.2", "-W", "2", lab.addr("b")
                        ).returncode == 0
        sent = lab.exec("a", sys.executable, "-c", textwrap.dedent(SEND_UDP), lab.addr("b"),
                        "20")
        assert sent.returncode == 0, sent.stderr
        assert lab.exec("b", "ping", "-c", "3", "-i", "0.2", "-W", "2", lab.addr("a")
                        ).returncode == 0
    finally:
        listener.communicate("", timeout=10)  # end of stdin: it exits


def test_capture_index_and_check_agree_with_tshark(make_lab, tmp_path: Path) -> None:
    lab = make_lab(TOPOLOGY)
    summary = lab.state.summary()
    run = tmp_path / "run"
    (run / "captures").mkdir(parents=True)
    (run / "lab.json").write_text(json.dumps(summary))
    interface = default_interface(summary["nodes"]["a"])
    assert interface == lab.plan.nodes["a"].uplink_interface
    started = time.time()
    capture = start_capture(CaptureSpec(node="a"), lab.ns("a"), interface,
                            run / "captures" / "a.pcap")
    try:
        traffic(lab)
    finally:
        entry = capture.stop(relative_to=run)
    (run / "run.json").write_text(json.dumps({"started_unix": started, "duration_s": 30,
                                              "prometheus_url": None}))
    update_index(run / "captures" / "index.json", entry)
    pcap = run / "captures" / "a.pcap"
    assert read_index(run / "captures" / "index.json") == [entry]
    assert entry["file"] == "captures/a.pcap" and entry["interface"] == interface
    assert entry["dropped"] == 0
    assert entry["packets"] == tshark_count(pcap) >= 36
    a, b = lab.addr("a"), lab.addr("b")
    expect = tmp_path / "expect.yaml"
    expect.write_text(textwrap.dedent("""\
        - {check: packets, from: a, to: b, proto: icmp, min: 8, max: 8}
        - {check: packets, from: b, to: a, proto: icmp, min: 8, max: 8}
        - {check: packets, from: a, to: b, proto: udp, port: 9999, min: 20, max: 20}
        - {check: packets, from: a, to: b, proto: udp, measure: bytes, min: 1}
        - {check: no_packets, from: b, to: a, proto: udp}
        - {check: via, from: a, through: b, proto: udp}
        """))
    result = run_cli("check", str(run), str(expect))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "6 passed (of 6 expectations)" in result.stdout
    udp_bytes = subprocess.run(
        ["tshark", "-n", "-r", str(pcap), "-Y", f"ip.src == {a} && ip.dst == {b} && udp",
         "-T", "fields", "-e", "frame.len"], capture_output=True, text=True, check=True)
    assert f"({sum(map(int, udp_bytes.stdout.split()))} bytes)" in result.stdout
    assert tshark_count(pcap, f"ip.src == {a} && ip.dst == {b} && icmp") == 8
    assert tshark_count(pcap, f"ip.src == {b} && ip.dst == {a} && icmp") == 8


def test_packet_cap_stops_the_capture_and_counts_what_was_written(make_lab,
                                                                  tmp_path: Path) -> None:
    lab = make_lab(TOPOLOGY)
    spec = CaptureSpec(node="b", interface="eth0", filter="icmp", max_packets=3)
    capture = start_capture(spec, lab.ns("b"), "eth0", tmp_path / "b.pcap")
    assert lab.exec("a", "ping", "-c", "5", "-i", "0.2", lab.addr("b")).returncode == 0
    assert capture.wait(10), "tcpdump should stop by itself after 3 packets"
    entry = capture.stop()
    assert entry["packets"] == 3 == tshark_count(tmp_path / "b.pcap")
    assert entry["filter"] == "icmp" and entry["name"] == "b-eth0"


@pytest.mark.parametrize("max_seconds", [None, 60])
def test_a_capture_started_with_sigint_ignored_still_stops_cleanly(
        make_lab, tmp_path: Path, max_seconds: int | None) -> None:
    """`sudo testbed run ... &` passes SIGINT on as ignored. tcpdump (and coreutils
    timeout, for a capped capture) install their own SIGINT handlers, so stop() still
    gets a flushed pcap and a clean exit, not a kill after its timeout."""
    lab = make_lab(TOPOLOGY)
    before = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        spec = CaptureSpec(node="b", filter="icmp", max_seconds=max_seconds)
        capture = start_capture(spec, lab.ns("b"), "eth0", tmp_path / "b.pcap")
    finally:
        signal.signal(signal.SIGINT, before)
    assert lab.exec("a", "ping", "-c", "3", "-i", "0.2", lab.addr("b")).returncode == 0
    entry = capture.stop(timeout=5)  # raises CaptureError if tcpdump had to be killed
    assert "problem" not in entry
    assert entry["packets"] == 6 == tshark_count(tmp_path / "b.pcap")


@pytest.mark.skipif(shutil.which("timeout") is None, reason="needs coreutils timeout")
def test_capture_command_with_a_duration(make_lab, tmp_path: Path) -> None:
    lab = make_lab(TOPOLOGY)
    pcap = tmp_path / "out.pcap"
    env = dict(os.environ, TESTBED_STATE_DIR=str(lab.state.root))
    proc = subprocess.Popen([sys.executable, "-m", "testbed", "capture", "b:eth0", "--filter",
                             "icmp", "--duration", "3s", "-o", str(pcap), "--index",
                             str(tmp_path / "index.json")], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(1.0)
    lab.exec("a", "ping", "-c", "4", "-i", "0.2", lab.addr("b"))
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, out + err
    assert f"8 packets captured, 0 dropped by the kernel; {pcap}" in out
    assert tshark_count(pcap) == 8
    [entry] = read_index(tmp_path / "index.json")
    assert entry["packets"] == 8 and entry["file"] == str(pcap)
    bad = run_cli("capture", "b:eth7", state_dir=lab.state.root)
    assert bad.returncode == 1 and "b has no interface 'eth7' (it has: eth0)" in bad.stderr


def test_up_says_that_declared_captures_record_under_run(tmp_path: Path,
                                                          state_root: Path) -> None:
    """`testbed up` does not silently ignore a topology's capture: it says where they
    record, and the hand-started command it prints works on the lab."""
    from tests.conftest import unique_lab_name

    name = unique_lab_name("cap")
    topology = tmp_path / "t.yaml"
    topology.write_text(f"name: {name}\nnodes:\n  core: {{kind: router}}\n"
                        "  lan: {kind: switch, uplink: {to: core}}\n"
                        "  a: {kind: host, uplink: {to: lan, capture: {filter: icmp}}}\n")
    up = run_cli("up", str(topology), "--quiet", state_dir=state_root)
    try:
        assert up.returncode == 0, up.stderr
        assert f"note: the topology declares 1 capture(s) (first at {topology}:5)" \
            in up.stderr, up.stderr
        hint = up.stderr.split("e.g. testbed ", 1)[1].split()
        assert hint[:2] == ["capture", "a:eth0"], hint
        pcap = tmp_path / "a.pcap"
        done = run_cli("capture", "a:eth0", "--duration", "1s", "-o", str(pcap),
                       state_dir=state_root)
        assert done.returncode == 0, done.stderr
        assert pcap.stat().st_size >= 24
    finally:
        assert run_cli("down", name, "--quiet", state_dir=state_root).returncode == 0
