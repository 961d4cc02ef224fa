"""`testbed reboot NODE`: what a scenario's restart wave does to one host, by hand (and
what playbooks/patch-tuesday.yml calls for each patched host)."""

from __future__ import annotations

import argparse
from typing import Any

from testbed.cli.common import add_lab_arg


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
    from testbed.lab.lab import Lab

    lab = Lab.attach(args.lab, state_dir=args.state_dir)
    lab.reboot(*args.nodes, down_time=args.down_time, mode=args.mode,
               say=lambda text: print(text, flush=True))
    return 0
