"""`testbed check` speed and memory: 5 expectations over a 1,000,000-packet pcap.

Writes a synthetic run (run.json, lab.json, captures/index.json) and a pcap of a login
storm seen on a core link: SYNs from 40 homes to the login server and its SYN-ACKs, UDP
between homes and supernodes, a corporate site talking to its proxy; 1M packets over
100 s, written as raw pcap records with struct (fast; no scapy per packet). Then, in a
fresh process (so its peak RSS is the evaluation's own), evaluates 5 expectations and
prints packets/s and peak RSS. Target: >= 100,000 packets/s, memory independent of the
pcap's size.

`link_rate` needs every frame, so tcpdump's BPF pre-filter cannot drop anything here:
every packet is decoded in Python (the worst case). --filterable drops that expectation
to show the pre-filtered path.

    .venv/bin/python benchmarks/bench_check.py [--packets 1000000] [--filterable]
"""

from __future__ import annotations

import argparse
import json
import resource
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

T0 = 1_700_000_000.0
SECONDS = 100.0
TARGET = 100_000

EXPECT = """\
- {check: peak_rate, to: login, proto: tcp, port: 443, flags: SYN !ACK, min: 1000}
- {check: no_packets, from: {group: corp, kind: peer}, to: login}
- {check: via, from: {group: corp, kind: peer}, through: corp-proxy, capture: core-eth0}
- {check: packets, from: {kind: peer, group: homes}, to: {labels: {sn_capable: true}},
   proto: udp, window: [10, 60], min: 1}
- {check: link_rate, limit: 100Mbit}
"""

NODES: dict[str, tuple[str, str | None, dict[str, object], str]] = {
    "login": ("login", None, {}, "198.18.0.2"),
    "corp-proxy": ("proxy", "corp", {}, "10.9.0.2"),
    **{f"sn{i}": ("peer", None, {"sn_capable": True}, f"198.18.2.{i + 1}")
       for i in range(1, 11)},
    **{f"home{i}": ("peer", "homes", {}, f"10.{i}.0.2") for i in range(1, 41)},
    **{f"corp{i}": ("peer", "corp", {}, f"10.9.0.{10 + i}") for i in range(1, 6)},
}


def ip4(text: str) -> bytes:
    return bytes(int(x) for x in text.split("."))


def frame(src: str, dst: str, proto: int, sport: int, dport: int, flags: int = 0,
          payload: int = 0) -> bytes:
    """Ethernet + IPv4 + TCP/UDP headers (checksums left 0: nobody verifies them)."""
    if proto == 6:
        l4 = struct.pack("!HHIIBBHHH", sport, dport, 1, 0, 0x50, flags, 65535, 0, 0)
    else:
        l4 = struct.pack("!HHHH", sport, dport, 8 + payload, 0)
    l4 += b"\0" * payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(l4), 0, 0, 64, proto, 0,
                     ip4(src), ip4(dst))
    return b"\x02\0\0\0\0\x02\x02\0\0\0\0\x01\x08\x00" + ip + l4


def templates() -> list[bytes]:
    """A cycle of frames in the storm's proportions (SYN, SYN-ACK, media, corp)."""
    homes = [a for n, (_, g, _, a) in NODES.items() if g == "homes"]
    sns = [a for n, (_, _, labels, a) in NODES.items() if labels]
    corp = [a for n, (k, g, _, a) in NODES.items() if g == "corp" and k == "peer"]
    login, proxy = NODES["login"][3], NODES["corp-proxy"][3]
    cycle = []
    for i in range(400):
        home = homes[i % len(homes)]
        cycle.append(frame(home, login, 6, 40000 + i, 443, flags=0x02))
        cycle.append(frame(login, home, 6, 443, 40000 + i, flags=0x12))
        cycle.append(frame(home, sns[i % len(sns)], 17, 5000, 33033, payload=100))
        cycle.append(frame(sns[i % len(sns)], home, 17, 33033, 5000, payload=100))
        if i % 4 == 0:
            cycle.append(frame(corp[i % len(corp)], proxy, 6, 50000 + i, 8888, flags=0x18,
                               payload=200))
    return cycle


def write_run(run: Path, packets: int) -> Path:
    (run / "captures").mkdir(parents=True)
    nodes = {name: {"kind": k, "group": g, "labels": labels, "namespace": f"tb-b-{name}",
                    "interfaces": [{"name": "eth0", "address": f"{a}/24", "peer": "core"}],
                    "uplink": "core"} for name, (k, g, labels, a) in NODES.items()}
    (run / "lab.json").write_text(json.dumps({"lab": "bench", "nodes": nodes}))
    (run / "run.json").write_text(json.dumps({"started_unix": T0, "duration_s": SECONDS,
                                              "prometheus_url": None}))
    pcap = run / "captures" / "core-eth0.pcap"
    cycle = templates()
    step = SECONDS / packets
    pack = struct.Struct("<IIII").pack
    with open(pcap, "wb") as out:
        out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1))
        chunk = []
        for i in range(packets):
            body = cycle[i % len(cycle)]
            ts = T0 + i * step
            sec = int(ts)
            chunk.append(pack(sec, int((ts - sec) * 1e6), len(body), len(body)))
            chunk.append(body)
            if len(chunk) >= 20000:
                out.write(b"".join(chunk))
                chunk.clear()
        out.write(b"".join(chunk))
    (run / "captures" / "index.json").write_text(json.dumps([{
        "name": "core-eth0", "node": "core", "interface": "eth0", "filter": "",
        "snaplen": 262144, "file": "captures/core-eth0.pcap", "packets": packets,
        "dropped": 0, "started_unix": T0, "stopped_unix": T0 + SECONDS}]))
    return pcap


def evaluate(run: Path, expect: Path, packets: int) -> int:
    """Runs in its own process: import, evaluate, report speed and peak memory."""
    import scapy.utils  # noqa: F401  (imported here so "after imports" includes it)

    from testbed.capture.evaluate import check_run
    from testbed.capture.expectations import load_expectations
    from testbed.capture.verdict import report

    expectations = load_expectations(expect)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    began = time.perf_counter()
    verdicts = check_run(run, expectations)
    elapsed = time.perf_counter() - began
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    sys.stdout.write(report(verdicts))
    rate = packets / elapsed
    print(f"\n{packets:,} packets, {len(expectations)} expectations: {elapsed:.2f}s, "
          f"{rate:,.0f} packets/s (target >= {TARGET:,}: {'met' if rate >= TARGET else 'MISSED'})")
    print(f"peak RSS {peak / 1024:.0f} MiB (after imports {before / 1024:.0f} MiB; the pcap "
          f"is {(run / 'captures' / 'core-eth0.pcap').stat().st_size / 2**20:.0f} MiB)")
    return 0 if rate >= TARGET else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packets", type=int, default=1_000_000)
    parser.add_argument("--filterable", action="store_true",
                        help="leave out link_rate, so tcpdump can pre-filter")
    parser.add_argument("--evaluate", nargs=2, metavar=("RUN", "EXPECT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.evaluate:
        return evaluate(Path(args.evaluate[0]), Path(args.evaluate[1]), args.packets)
    with tempfile.TemporaryDirectory(prefix="bench-check-") as tmp:
        run = Path(tmp) / "run"
        began = time.perf_counter()
        pcap = write_run(run, args.packets)
        print(f"wrote {pcap.stat().st_size / 2**20:.0f} MiB pcap ({args.packets:,} packets) in "
              f"{time.perf_counter() - began:.1f}s", flush=True)
        text = EXPECT if not args.filterable else EXPECT.rsplit("- {check: link_rate", 1)[0]
        expect = Path(tmp) / "expect.yaml"
        expect.write_text(text)
        return subprocess.run([sys.executable, __file__, "--packets", str(args.packets),
                               "--evaluate", str(run), str(expect)]).returncode


if __name__ == "__main__":
    sys.exit(main())
