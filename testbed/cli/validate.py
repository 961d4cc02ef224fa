"""`testbed validate`: check a topology without root and without creating anything."""

from __future__ import annotations

import argparse
from collections import Counter
from typing import Any

from testbed.cli.common import add_topology_args, load


def add_parser(sub: Any) -> None:
    p = sub.add_parser("validate", help="check a topology file (no root needed)",
                       description="Load, expand and check a topology: schema, names, links, "
                                   "addresses. Prints every problem with file:line. Exit 0 "
                                   "when valid, 2 when not.")
    add_topology_args(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from testbed.plan.build import build_plan

    topology = load(args)
    plan = build_plan(topology)
    kinds = Counter(n.kind for n in topology.nodes.values())
    summary = ", ".join(f"{count} {kind}" for kind, count in sorted(kinds.items()))
    what = (f"--topo {args.topo}" + "".join(f" --custom {c}" for c in args.custom)
            if args.topo else topology.source)  # not the converted YAML's temporary file
    print(f"{what}: valid. lab {topology.name!r}: {len(topology.nodes)} nodes "
          f"({summary}), {len(topology.links)} links, {len(plan.namespaces())} namespaces")
    return 0
