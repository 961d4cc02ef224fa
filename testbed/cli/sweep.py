"""`testbed sweep TOPOLOGY SCENARIO --grid NAME=V1,V2 ... --repeat N`: a grid of runs."""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Any

from testbed.cli.run import duration_arg, positive_seconds


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "sweep", help="run a scenario over a grid of parameters, repeated (root)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Run SCENARIO on TOPOLOGY once per cell of the grid (every combination "
                    "of the --grid values) and repeat each N times with seeds derived from "
                    "the scenario's (repeat r uses seed + r). Every run is a full `testbed "
                    "run` with its own results directory. Bad names or values fail before "
                    "anything is built. Resumable: Ctrl-C or a crash stops the sweep; the "
                    "same command runs only what is not finished.",
        epilog="""results/sweeps/<name>/ holds:
  plan.json     what the sweep is (files, grid, repeats, seeds); a resume must match it
  runs/         one results directory per run: <cell>__r<repeat> (runs/.partial: cut short)
  sweep.csv     one row per finished run: grid values, seed, outcome class, metrics
  sweep.json    per cell: runs, outcome classes, median and interval of every metric;
                per two-level factor: its effect with bounds, larger than the intervals?
  sweep.html    phase diagram (outcome class and median trough over the first two axes),
                groups, effects

grid names: a topology parameter (the topology's or the scenario's params:), or duration.

examples:
  sudo testbed sweep topologies/skype-2007.yaml scenarios/sweeps/factorial-2007.yaml \\
       --grid policy=2007,fixed --grid sn_overload=drop-role,busy --repeat 3 \\
       --set homes=20 --set supernodes=4 --set corp_hosts=2
  sudo testbed sweep topologies/skype-2007.yaml scenarios/sweeps/capacity-2007.yaml \\
       --grid sn_joins=0.4,1,2.5 --grid login_rate=4,20 \\
       --set homes=20 --set supernodes=4 --set corp_hosts=2
  testbed compare results/sweeps/A results/sweeps/B""")
    p.add_argument("topology", metavar="TOPOLOGY", help="topology YAML file")
    p.add_argument("scenario", metavar="SCENARIO", help="scenario YAML file")
    p.add_argument("--grid", action="append", default=[], metavar="NAME=V1,V2,...",
                   help="an axis of the grid (repeatable)")
    p.add_argument("--repeat", type=int, default=1, metavar="N",
                   help="runs per cell (default 1)")
    p.add_argument("--name", help="the sweep's directory name (default: scenario and grid "
                                  "names)")
    add_run_args(p, results="results/sweeps")
    p.add_argument("--check-only", action="store_true",
                   help="check every cell and print the runs; build nothing")
    p.set_defaults(run=run)


def add_run_args(p: argparse.ArgumentParser, results: str) -> None:
    """What every run of the sweep shares (as `testbed run`'s options)."""
    p.add_argument("--set", dest="overrides", action="append", default=[],
                   metavar="NAME=VALUE", help="a topology parameter for every run")
    p.add_argument("--seed", type=int, help="base seed (default: the scenario's)")
    p.add_argument("--duration", type=duration_arg, metavar="DURATION",
                   help="run time of every run instead of the scenario's duration")
    p.add_argument("--results", default=results, metavar="DIR",
                   help=f"where sweeps go (default ./{results})")
    p.add_argument("--scrape-interval", type=positive_seconds, default=0.0, metavar="SECONDS",
                   help="Prometheus scrape interval (default: 1 s, and one more second per "
                        "250 scrape targets in larger labs, which one machine can scrape)")
    p.add_argument("--ui-port", type=int, default=9090, metavar="PORT")
    p.add_argument("--no-report", action="store_true", help="skip each run's HTML report")
    p.add_argument("--lab-name", metavar="NAME",
                   help="build the labs under this name instead of the topology's (to run "
                        "beside another lab of the same topology)")


def sweep_name(scenario: str, grid: list[str]) -> str:
    names = [g.partition("=")[0].strip() for g in grid]
    return re.sub(r"[^A-Za-z0-9._-]+", "_", "-".join([Path(scenario).stem, *names]))


def request_from(args: argparse.Namespace, root: Path) -> Any:
    import dataclasses

    from testbed.cli.run import options_from
    from testbed.sweep.grid import parse_axes
    from testbed.sweep.runner import SweepRequest

    for key, default in (("run_id", None), ("ui_address", None)):
        if not hasattr(args, key):
            setattr(args, key, default)
    return SweepRequest(topology=Path(args.topology), scenario=Path(args.scenario),
                        axes=parse_axes(args.grid), repeat=args.repeat, root=root,
                        base=dataclasses.replace(options_from(args),
                                                 lab_name=getattr(args, "lab_name", None)))


def run(args: argparse.Namespace) -> int:
    from testbed.sweep.runner import plan_sweep, run_sweep

    root = Path(args.results) / (args.name or sweep_name(args.scenario, args.grid))
    request = request_from(args, root)
    if args.check_only:
        plan = plan_sweep(request)
        print(f"{len(plan.cells)} cell(s) x {args.repeat} = {len(plan.specs)} runs into "
              f"{root}")
        for spec in plan.specs:
            print(f"  {spec.run_id:<50} {spec.cell.label} (seed {spec.seed})")
        return 0
    run_sweep(request)
    return 0


def repeat(args: argparse.Namespace) -> int:
    """`testbed run --repeat N`: a sweep without a grid."""
    from testbed.sweep.runner import run_sweep

    args.grid = []
    name = args.run_id or f"{Path(args.scenario).stem}-x{args.repeat}"
    args.run_id = None
    run_sweep(request_from(args, Path(args.results) / name))
    return 0
