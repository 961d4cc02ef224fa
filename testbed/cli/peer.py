"""`testbed peer --config FILE`: run one reference overlay peer (used inside lab nodes)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def add_parser(sub: Any) -> None:
    p = sub.add_parser("peer", help="run one reference overlay peer (inside a lab node)",
                       description="Run the reference Skype-like peer described by a config "
                                   "file that `testbed up` writes into each node's state "
                                   "directory (docs/protocol.md). Normally started by the "
                                   "testbed, not by hand.")
    p.add_argument("--config", required=True, type=Path, help="the node's peer.json")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from testbed.peer.runner import main

    return main(args.config)
