"""`testbed compare RUN RUN ...`: outcome metrics and plots of several runs side by side."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "compare", help="put runs side by side: outcome metrics and overlaid plots",
        description="Read results/<run-id>/ directories written by `testbed run` and write "
                    "a comparison report (HTML with PNG plots): a table of outcome metrics "
                    "(lowest online fraction, time to 90/95 %% online, amplification, ...) "
                    "and the online fraction, login attempts/s, supernode count and clients "
                    "per supernode of every run on shared axes.",
        epilog="examples: testbed compare results/RUN-2007 results/RUN-fixed -o results/cmp\n"
               "          testbed compare results/sweeps/NAME   (sweeps or run --repeat "
               "groups: which differences exceed their intervals)")
    p.add_argument("runs", nargs="+", metavar="RUN",
                   help="run directories, or sweep directories (testbed sweep, run --repeat)")
    p.add_argument("-o", "--output", metavar="DIR",
                   help="where the report goes (default results/compare-<first run>)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from testbed.metrics.compare import write_comparison

    runs = [Path(r) for r in args.runs]
    out = Path(args.output) if args.output else runs[0].parent / f"compare-{runs[0].name}"
    from testbed.sweep.compare import compare_groups, is_group

    if all(is_group(r) for r in runs):  # sweeps / repeated runs: groups with intervals
        page, lines = compare_groups(runs, out)
        print("\n".join([*lines, str(page)]))
        return 0
    print(write_comparison(runs, out))
    return 0
