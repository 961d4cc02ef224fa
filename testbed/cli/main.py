"""`testbed`: the command line. One module per command; heavy imports happen in run()."""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence
from types import FrameType

from testbed import __version__
from testbed.cli import (
    capture,
    check,
    cli,
    compare,
    convert,
    demo,
    down,
    exec_cmd,
    export,
    graph,
    inspect,
    inventory,
    peer,
    reboot,
    results,
    run,
    schema,
    sweep,
    up,
    validate,
)
from testbed.errors import InputError, TestbedError

COMMANDS = (validate, schema, up, down, inspect, exec_cmd, reboot, run, results, compare,
            graph, demo, peer, capture, check, inventory, export, cli, convert, sweep)

EPILOG = """\
typical session:
  testbed validate topologies/skype-2007.yaml      check a topology (no root needed)
  sudo testbed up topologies/skype-2007.yaml       build the lab: namespaces, links, NATs
  sudo testbed inspect                             nodes, addresses, services
  sudo testbed exec home001 -- ping -c1 198.18.0.2 run a command inside a node
  sudo testbed down                                remove exactly what `up` created

for Mininet users (docs/mininet.md):
  sudo testbed up --topo tree,depth=2,fanout=3     mn's topologies (and --custom FILE)
  sudo testbed cli                                 Mininet's CLI on the running lab

reproducing an outage:
  sudo testbed run topologies/skype-2007.yaml scenarios/skype-2007.yaml
                                                   lab + Prometheus + scenario -> results/
  testbed compare results/RUN1 results/RUN2        outcome metrics and plots side by side
  testbed results serve results/RUN1               reopen a run's Prometheus data
  testbed check results/RUN1 [EXPECT]              verdicts of expect: over its pcaps (CI)
  sudo testbed demo                                both 2007 runs and their comparison
  sudo testbed sweep TOPO SCEN --grid N=V1,V2 --repeat 3   a grid of runs, resumable

State lives in /run/testbed/<lab>/ (override with --state-dir or TESTBED_STATE_DIR).
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="testbed",
        description="Reproduce large P2P outages at packet level: real processes in "
                    "emulated networks (network namespaces, NATs, proxies, shaped links).",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"testbed {__version__}")
    parser.add_argument("--state-dir", metavar="DIR",
                        help="where labs keep their state (default /run/testbed)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMANDS:
        module.add_parser(sub)
    return parser


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    signal.signal(signal.SIGTERM, _terminate)  # so SIGTERM rolls back like Ctrl-C
    try:
        result: int = args.run(args)
        return result
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except TestbedError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `testbed inspect | head`
        sys.stderr.close()
        return 0
