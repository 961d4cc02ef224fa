"""`testbed down`: remove exactly what `up` created."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def add_parser(sub: Any) -> None:
    p = sub.add_parser("down", help="remove a lab (root)",
                       description="Stop the lab's services and remove its namespaces (with "
                                   "their links, switches, qdiscs and rules), from the lab's "
                                   "journal. Idempotent; works after `up` was killed.")
    p.add_argument("name", nargs="?", metavar="LAB",
                   help="lab name or its topology file (default: the only lab that is up)")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from testbed.lab.lab import Lab
    from testbed.lab.state import list_labs, state_root
    from testbed.progress import Progress

    name = args.name
    if name and name.endswith((".yaml", ".yml")):
        from testbed.topology.loader import load_topology

        name = load_topology(name).name
    labs = list_labs(state_root(args.state_dir))
    if (name and name not in labs) or (not name and not labs):
        print(f"lab {name!r} is not up; nothing to do" if name else "no lab is up; nothing to do")
        return 0
    lab = Lab.attach(name, state_dir=args.state_dir)
    from testbed.metrics.recover import orphaned_runs, recover

    orphans = orphaned_runs(lab.state.read().processes)  # before their Prometheus stops
    notes = lab.down(Progress(enabled=not args.quiet))
    for note in notes:
        print(f"  {note}", file=sys.stderr)
    print(f"lab {lab.name!r} is down")
    for run_dir in orphans:
        print(f"run {run_dir} was interrupted (its `testbed run` is gone): recovering its "
              "results from disk")
        recover(run_dir, say=lambda text: print(f"  {text}"))
    return 0
