"""`testbed capture NODE[:IFACE]`: tcpdump inside a node of a running lab, for a while."""

from __future__ import annotations

import argparse
import contextlib
from pathlib import Path
from typing import Any

from testbed.cli.common import add_lab_arg, find
from testbed.errors import TestbedError


def add_parser(sub: Any) -> None:
    p = sub.add_parser("capture", help="capture packets on a node's interface (root)",
                       description="Run tcpdump inside NODE's network namespace on IFACE "
                                   "(default: its uplink) and write a pcap, e.g. "
                                   "`testbed capture login --filter 'tcp[tcpflags] & "
                                   "tcp-syn != 0' --duration 30s -o syn.pcap`. Ctrl-C "
                                   "stops early. Prints packets captured and dropped.")
    add_lab_arg(p)
    p.add_argument("target", metavar="NODE[:IFACE]")
    p.add_argument("--filter", default="", metavar="BPF", help="BPF filter (tcpdump syntax)")
    p.add_argument("--duration", metavar="TIME",
                   help="stop after this long, e.g. 30 or 30s (default: until Ctrl-C)")
    p.add_argument("--count", type=int, metavar="N", help="stop after N packets")
    p.add_argument("--snaplen", type=int, default=256, metavar="BYTES",
                   help="bytes kept per packet (default 256)")
    p.add_argument("-o", "--output", metavar="FILE",
                   help="pcap to write (default NODE-IFACE.pcap)")
    p.add_argument("--index", metavar="FILE",
                   help="also add the capture to this index.json (the format of a run's "
                        "captures/index.json, for `testbed check`)")
    p.set_defaults(run=run)


def _seconds(text: str) -> float:
    from testbed import units

    try:
        return float(text)
    except ValueError:
        pass
    try:
        return units.parse_duration(text)
    except units.UnitError as exc:
        raise TestbedError(f"--duration: {exc}") from None


def run(args: argparse.Namespace) -> int:
    from testbed.capture.tcpdump import (
        CaptureSpec,
        default_interface,
        start_capture,
        update_index,
    )

    node_name, _, interface = args.target.partition(":")
    state = find(args)
    nodes = state.summary()["nodes"]
    node = nodes.get(node_name)
    if node is None:
        sample = ", ".join(list(nodes)[:8])
        raise TestbedError(f"lab {state.lab!r} has no node {node_name!r} (nodes: {sample}...)")
    if not node["namespace"]:
        raise TestbedError(f"{node_name} is a {node['kind']}: it has no namespace to capture "
                           "in; capture on a node attached to it")
    names = [i["name"] for i in node.get("interfaces") or []]
    interface = interface or default_interface(node) or ""
    if interface not in names:
        raise TestbedError(f"{node_name} has no interface {interface!r} (it has: "
                           f"{', '.join(names) or 'none'})")
    duration = _seconds(args.duration) if args.duration else None
    spec = CaptureSpec(node=node_name, interface=interface, filter=args.filter,
                       snaplen=args.snaplen, max_packets=args.count, max_seconds=duration)
    output = Path(args.output or f"{node_name}-{interface}.pcap").resolve()
    capture = start_capture(spec, node["namespace"], interface, output)
    print(f"capturing on {node_name}:{interface} -> {output}"
          + (f" for {duration:g}s" if duration else "; Ctrl-C stops"), flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        capture.wait(None if duration is None else duration + 5)
    entry = capture.stop()
    if args.index:
        update_index(Path(args.index), {**entry, "file": str(output)})
    print(f"{entry['packets']} packets captured, {entry['dropped'] or 0} dropped by the "
          f"kernel; {output}")
    return 0
