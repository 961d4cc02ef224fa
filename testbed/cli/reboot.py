"""`testbed reboot NODE`: what a scenario's restart wave does to one host, by hand (and
what playbooks/patch-tuesday.yml calls for each patched host)."""

from __future__ import annotations

import argparse
import time
from typing import Any

from testbed.cli.common import add_lab_arg, find


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "reboot", help="reboot nodes of a running lab: processes die, links go down (root)",
        description="Reboot NODE(s) like a PC: its services are killed (SIGKILL, or SIGTERM "
                    "first with --mode graceful), its links go down for --down-time seconds, "
                    "then come back with their routes and the services start again from the "
                    "node's state directory (a peer keeps its host cache).",
        epilog="example: sudo testbed reboot home001 home002 --down-time 20")
    add_lab_arg(p)
    p.add_argument("nodes", nargs="+", metavar="NODE")
    p.add_argument("--down-time", type=float, default=5.0, metavar="SECONDS",
                   help="how long the node stays down (default 5)")
    p.add_argument("--mode", choices=("hard", "graceful"), default="hard",
                   help="hard: SIGKILL (a crash or power cut); graceful: SIGTERM first")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from testbed.lab.lab import Lab, default_backend

    runtime = Lab(find(args), default_backend()).runtime
    for node in args.nodes:
        runtime.node(node)  # unknown or namespace-less nodes fail before anything happens
    for node in args.nodes:
        killed = runtime.host_down(node, args.mode)
        print(f"{node}: down ({killed} processes ended, links down)", flush=True)
    time.sleep(max(0.0, args.down_time))
    for node in args.nodes:
        started = runtime.host_up(node)
        print(f"{node}: up again ({started} services started)", flush=True)
    return 0
