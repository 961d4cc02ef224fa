"""`testbed check RUN [EXPECT]`: evaluate expectations over a run's pcaps and Prometheus
data; a verdict per expectation, JUnit XML for CI, exit 0 only if every one passed.
PromQL expectations are evaluated on the run's own TSDB (a Prometheus started on it for
the check), so a stored run gives the same verdicts now and later."""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from pathlib import Path
from typing import Any

from testbed.errors import ExpectationError, Problem


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "check", help="check a run's pcaps and metrics against expectations (CI verdicts)",
        description="Evaluate expectations (docs/expectations.md) over a recorded run: "
                    "packet counts, rates and paths in its pcaps (captures/index.json) and "
                    "PromQL bounds over its Prometheus data. Prints a verdict per "
                    "expectation: PASS, FAIL, VACUOUS (nothing matched, so it would pass "
                    "trivially) or ERROR (could not be evaluated). Exit 0 if all pass, 1 "
                    "otherwise, 2 for bad input. Example: "
                    "`testbed check results/RUN expect.yaml --junit check.xml`.")
    p.add_argument("run_dir", metavar="RUN", help="a run directory, e.g. results/ID")
    p.add_argument("expect", metavar="EXPECT", nargs="?",
                   help="expectation file (a list, or a mapping with expect:); default: "
                        "the expect: list of the run's scenario.yaml")
    p.add_argument("--junit", metavar="FILE", help="also write JUnit XML here")
    p.add_argument("--prometheus", metavar="URL",
                   help="Prometheus to query for promql checks; by default a Prometheus "
                        "is started on the run's own TSDB snapshot for the check (and "
                        "stopped), else run.json's URL (a run still going)")
    p.add_argument("--no-prefilter", action="store_true",
                   help="decode every packet in Python instead of pre-filtering with tcpdump")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from testbed.capture.evaluate import check_run
    from testbed.capture.expectations import load_expectations
    from testbed.capture.verdict import report, write_junit
    from testbed.metrics.offline import OfflinePrometheus, recorded_tsdb

    run_dir = Path(args.run_dir)
    source = Path(args.expect) if args.expect else run_dir / "scenario.yaml"
    if not source.is_file():
        hint = "" if args.expect else " (no EXPECT file given, and the run has no scenario)"
        raise ExpectationError([Problem(f"expectation file not found{hint}", str(source))])
    expectations = load_expectations(source)
    began = time.monotonic()
    with contextlib.ExitStack() as stack:
        url = args.prometheus
        tsdb = recorded_tsdb(run_dir)
        if url is None and tsdb is not None and any(e.check == "promql"
                                                    for e in expectations):
            url = stack.enter_context(OfflinePrometheus(tsdb)).url
            print(f"promql checks: a Prometheus on the run's {tsdb.name}/ ({url})",
                  flush=True)
        verdicts = check_run(run_dir, expectations, url, prefilter=not args.no_prefilter)
    sys.stdout.write(report(verdicts))
    print(f"checked {run_dir} against {source} in {time.monotonic() - began:.1f}s")
    if args.junit:
        write_junit(verdicts, args.junit, suite=f"testbed check {run_dir.name}")
        print(f"JUnit XML: {args.junit}")
    return 0 if all(v.ok for v in verdicts) else 1
