"""`testbed up`: build a lab from a topology."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from testbed.cli.common import add_topology_args, load


def add_parser(sub: Any) -> None:
    p = sub.add_parser("up", help="build a lab from a topology (root)",
                       description="Build the lab: one network namespace per node, links with "
                                   "their bandwidth/loss, NAT and firewall rules, and the "
                                   "nodes' services. Everything created is journaled; if "
                                   "anything fails (or on Ctrl-C) it is all removed again.")
    add_topology_args(p)
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from testbed.capture.declared import place
    from testbed.lab.lab import Lab
    from testbed.progress import Progress

    topology = load(args)
    began = time.monotonic()
    if not args.quiet:
        print(f"building lab {topology.name!r}: {len(topology.nodes)} nodes",
              file=sys.stderr)
    try:
        lab = Lab.up(topology, state_dir=args.state_dir,
                     progress=Progress(enabled=not args.quiet))
    except KeyboardInterrupt:
        print(f"interrupted: lab {topology.name!r} was rolled back", file=sys.stderr)
        raise
    print(f"lab {topology.name!r} is up in {time.monotonic() - began:.1f}s "
          f"({len(lab.plan.veths)} links; state: {lab.state.dir}). Next: testbed inspect "
          f"--lab {topology.name}; testbed down {topology.name}")
    captures, _ = place(topology, lab.plan, [])  # the topology's own capture: items
    if captures:
        first = captures[0]
        print(f"note: the topology declares {len(captures)} capture(s) (first at "
              f"{first.where}); they record under `testbed run`. With `up`, start one by "
              f"hand, e.g. testbed capture {first.spec.node}:{first.interface} "
              f"--duration 60s -o {first.spec.node}.pcap", file=sys.stderr)
    return 0
