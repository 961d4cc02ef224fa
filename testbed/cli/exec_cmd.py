"""`testbed exec NODE -- CMD`: run a command inside a node's network namespace."""

from __future__ import annotations

import argparse
import os
from typing import Any

from testbed.cli.common import add_lab_arg, find
from testbed.errors import TestbedError


def add_parser(sub: Any) -> None:
    p = sub.add_parser("exec", help="run a command inside a node (root)",
                       description="Run CMD inside NODE's network namespace, with its "
                                   "addresses and routes, e.g. "
                                   "`testbed exec home001 -- ping -c1 198.18.0.2`. "
                                   "The exit code is CMD's.")
    add_lab_arg(p)
    p.add_argument("node", metavar="NODE")
    p.add_argument("cmd", nargs=argparse.REMAINDER, metavar="-- CMD ...")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from testbed.process import namespaces

    cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    if not cmd:
        raise TestbedError("no command given: testbed exec NODE -- CMD ...")
    state = find(args)
    nodes = state.summary()["nodes"]
    node = nodes.get(args.node)
    if node is None:
        sample = ", ".join(list(nodes)[:8])
        raise TestbedError(f"lab {state.lab!r} has no node {args.node!r} (nodes: {sample}...)")
    if not node["namespace"]:
        raise TestbedError(f"{args.node} is a {node['kind']}: it has no namespace to run in")
    namespaces.enter(node["namespace"])
    try:
        os.execvp(cmd[0], cmd)
    except FileNotFoundError:
        raise TestbedError(f"command not found: {cmd[0]}") from None
    return 0  # not reached
