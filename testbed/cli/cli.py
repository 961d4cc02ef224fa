"""`testbed cli [LAB]`: Mininet's own CLI (mininet.cli.CLI) on a running lab. Ctrl-D or
`exit` leaves the lab running; `--script FILE` runs CLI commands without a prompt (CI)."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from testbed.errors import TestbedError


def add_parser(sub: Any) -> None:
    p = sub.add_parser("cli", help="Mininet's CLI on a running lab (root)",
                       description="Mininet's own CLI over a lab built by `testbed up`: "
                                   "`home001 ping login` (node names become addresses), "
                                   "`pingall` (a sample on big labs: pingall group=NAME, "
                                   "sample=N, all), `iperf a b`, `link a b down`, `nodes`, "
                                   "`net`, `dump`, `links`, `sh`, `py`, `source FILE`. "
                                   "Ctrl-D leaves the lab running. See docs/mininet.md.")
    p.add_argument("name", nargs="?", metavar="LAB",
                   help="lab name (default: the only lab that is up)")
    p.add_argument("--script", metavar="FILE",
                   help="run the CLI commands in FILE and exit (as `mn --pre`)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from mininet.log import setLogLevel

    from testbed.lab.lab import Lab
    from testbed.mininet.net import LabCLI, LabNet

    if os.geteuid() != 0:
        raise TestbedError("the CLI runs commands inside the lab's namespaces: run it as "
                           "root (sudo)")
    if args.script and not os.path.isfile(args.script):
        raise TestbedError(f"no such script file {args.script!r}")
    lab = Lab.attach(args.name, state_dir=args.state_dir)
    setLogLevel("output")
    net = LabNet(lab)
    print(f"*** lab {lab.name!r}: {len(net.hosts)} hosts, {len(net.switches)} switches, "
          f"{len(net.links)} links. `help` lists commands; Ctrl-D leaves the lab running",
          file=sys.stderr)
    try:
        if args.script:
            idle, _ = os.pipe()  # commands' stdin: nothing to read, and never readable
            with os.fdopen(idle) as stdin:
                LabCLI(net, stdin=stdin, script=args.script)
        else:
            LabCLI(net)
    finally:
        net.stop()
    print(f"*** lab {lab.name!r} is still up (testbed down {lab.name} removes it)",
          file=sys.stderr)
    return 0
