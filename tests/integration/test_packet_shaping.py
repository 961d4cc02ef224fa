"""Shaping at packet level, with real TCP traffic: what a host behind a 700 kbit/s line
receives, frame by frame. Without the fix a veth hands TCP's 64 KB GSO super-packets to
the shaper, which releases each as one burst: per-second rates swung 0.6x-1.6x."""

from __future__ import annotations

import math
import struct
import subprocess
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.root

RATE = 700_000  # bit/s
BIN = 0.1  # s


def frames(pcap: Path) -> list[tuple[float, int]]:
    """(timestamp, wire length) of every frame in a classic pcap file."""
    data = pcap.read_bytes()
    magic = struct.unpack("<I", data[:4])[0]
    endian, scale = {0xA1B2C3D4: ("<", 1e-6), 0xA1B23C4D: ("<", 1e-9)}[magic]
    out, offset = [], 24
    while offset + 16 <= len(data):
        sec, frac, caught, wire = struct.unpack(endian + "IIII", data[offset:offset + 16])
        out.append((sec + frac * scale, wire))
        offset += 16 + caught
    return out


def test_a_700kbit_line_delivers_wire_sized_frames_at_a_steady_rate(make_lab,
                                                                     tmp_path: Path) -> None:
    lab = make_lab("""
nodes:
  core: {kind: router}
  server: {kind: host, uplink: {to: core}}
  home: {kind: host, uplink: {to: core, down: 700kbit, up: 10Mbit}}
""")
    pcap = tmp_path / "home.pcap"
    dump = lab.popen("home", "tcpdump", "-i", "eth0", "-s", "96", "-U", "-w", str(pcap),
                     "tcp and src host " + lab.addr("server"),
                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    sink = lab.popen("home", "iperf3", "-s", "-1", "-B", lab.addr("home"),
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(1.0)  # tcpdump and iperf3 listening
        run = lab.exec("server", "iperf3", "-c", lab.addr("home"), "-t", "6", "-w", "64K",
                       timeout=40)
        assert run.returncode == 0, run.stdout + run.stderr
    finally:
        time.sleep(0.5)
        dump.terminate()
        dump.wait(10)
        if sink.poll() is None:
            sink.kill()
        sink.wait(5)
    seen = frames(pcap)
    largest = max(length for _, length in seen)
    assert largest <= 1514, f"a {largest}-byte frame crossed the line: offload super-packet"
    assert len(seen) > 200, f"only {len(seen)} frames captured"
    # steady state: skip the first second (slow start) and the last partial bin
    start = seen[0][0] + 1.0
    end = seen[-1][0]
    bins = [0] * int((end - start) / BIN)
    for at, length in seen:
        index = math.floor((at - start) / BIN)
        if 0 <= index < len(bins):
            bins[index] += length
    rates = [8 * b / BIN / RATE for b in bins]
    assert len(rates) >= 30, rates
    outside = [round(r, 2) for r in rates if not 0.8 <= r <= 1.2]
    assert not outside, f"per-100 ms rate / 700 kbit/s outside +-20 %: {outside} of " \
                        f"{len(rates)} bins"
