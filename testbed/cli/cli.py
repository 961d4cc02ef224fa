"""`testbed cli [LAB]`: Mininet's own CLI (mininet.cli.CLI) on a running lab. Ctrl-D or
`exit` leaves the lab running; `--script FILE` runs CLI commands without a prompt (CI) and
exits 1 when the CLI refused or failed any of them."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Any

from testbed.errors import TestbedError


def add_parser(sub: Any) -> None:
    p = sub.add_parser("cli", help="Mininet's CLI on a running lab (root)",
                       description="Mininet's own CLI over a lab built by `testbed up`: "
                                   "`home001 ping login` (node names become addresses), "
                                   "`pingall` (a sample on big labs: pingall group=NAME, "
                                   "sample=N, all), `pingpair a b`, `iperf a b`, "
                                   "`link a b down`, `nodes`, "
                                   "`net`, `dump`, `links`, `sh`, `py`, `source FILE`. "
                                   "Ctrl-D leaves the lab running. See docs/mininet.md.")
    p.add_argument("name", nargs="?", metavar="LAB",
                   help="lab name (default: the only lab that is up)")
    p.add_argument("--script", metavar="FILE",
                   help="run the CLI commands in FILE and exit (as `mn --pre`); exit "
                        "status 1 if the CLI refused or failed a command")
    p.set_defaults(run=run)


class FailedCommands(logging.Handler):
    """Counts the CLI's error lines: each is a command refused (unknown command or node,
    wrong arguments) or failed (no such link, iperf3 failed). Mininet's `mn --pre` goes
    on regardless; a CI script must not pass over a typo."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1


def run(args: argparse.Namespace) -> int:
    from mininet.log import lg, setLogLevel

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
    failed = FailedCommands()
    lg.addHandler(failed)
    try:
        if args.script:
            idle, _ = os.pipe()  # commands' stdin: nothing to read, and never readable
            with os.fdopen(idle) as stdin:
                LabCLI(net, stdin=stdin, script=args.script)
        else:
            LabCLI(net)
    finally:
        lg.removeHandler(failed)
        net.stop()
    print(f"*** lab {lab.name!r} is still up (testbed down {lab.name} removes it)",
          file=sys.stderr)
    if args.script and failed.count:
        print(f"*** {failed.count} command(s) of {args.script} were refused or failed (see "
              "the messages above)", file=sys.stderr)
        return 1
    return 0
