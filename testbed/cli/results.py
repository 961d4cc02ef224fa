"""`testbed results serve RUN`: reopen a run's Prometheus TSDB snapshot in a Prometheus
on the machine's loopback, to query and graph it after the lab is gone.
`testbed results recover RUN`: finish an interrupted run's results from what is on disk
(testbed/metrics/recover.py)."""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from testbed.errors import TestbedError


def add_parser(sub: Any) -> None:
    p = sub.add_parser("results",
                       help="work with recorded runs (serve a run's TSDB, recover a killed run)",
                       description="Recorded runs live in results/<run-id>/.")
    actions = p.add_subparsers(dest="results_command", metavar="ACTION")
    serve = actions.add_parser(
        "serve", help="reopen a run's Prometheus data on http://127.0.0.1:PORT",
        description="Start Debian's prometheus on the run's TSDB snapshot (a copy, so the "
                    "run stays as recorded), on loopback (or $TESTBED_UI_ADDRESS, as in the "
                    "lab VM). Ctrl-C stops it. The run's time range is printed: use it in "
                    "the graph view.")
    serve.add_argument("run_dir", metavar="RUN", help="a run directory, e.g. results/ID")
    serve.add_argument("--port", type=int, default=9090, help="loopback port (default 9090)")
    serve.add_argument("--address", default=None,
                       help="listen address (default $TESTBED_UI_ADDRESS or 127.0.0.1)")
    recover = actions.add_parser(
        "recover", help="finish the results of a run that was killed (SIGKILL, OOM, power)",
        description="A run killed outright leaves run.json (complete: false), its steps, "
                    "pcaps and its Prometheus's data, but no series.csv, summary.json, "
                    "captures index or report. This starts a Prometheus on the run's data "
                    "(on loopback, stopped afterwards) and writes them; summary.json says "
                    "complete: false, recovered: true. Safe to run again; a run whose "
                    "`testbed run` is still alive is refused. `testbed down` does it by "
                    "itself for a run whose `testbed run` is gone.")
    recover.add_argument("run_dir", metavar="RUN", help="a run directory, e.g. results/ID")
    recover.add_argument("--no-report", action="store_true", help="skip the HTML report")
    p.set_defaults(run=run, parser=p)


def run(args: argparse.Namespace) -> int:
    if args.results_command == "recover":
        from testbed.metrics.recover import recover

        run_dir = Path(args.run_dir)
        summary = recover(run_dir, report=not args.no_report)
        if summary:
            print(f"recovered {run_dir}: lowest online "
                  f"{summary.get('min_online_fraction')}, final "
                  f"{summary.get('final_online_fraction')} (complete: false)")
        else:
            print(f"recovered what {run_dir} had on disk (no series)")
        return 0
    if args.results_command != "serve":
        args.parser.print_help()
        return 2
    run_dir = Path(args.run_dir)
    tsdb = run_dir / "tsdb"
    if not tsdb.is_dir():
        raise TestbedError(f"{run_dir} has no tsdb/ snapshot (was the run recorded by "
                           "`testbed run`, and did Prometheus start?)")
    binary = shutil.which("prometheus")
    if binary is None:
        raise TestbedError("prometheus is not installed; run the set-up (scripts/setup.sh)")
    info = json.loads((run_dir / "run.json").read_text()) if (run_dir / "run.json").exists() \
        else {}
    from testbed.metrics.forward import default_ui_address, ui_url

    address = args.address or default_ui_address()
    with tempfile.TemporaryDirectory(prefix="testbed-tsdb-") as work:
        data = Path(work) / "data"
        shutil.copytree(tsdb, data)
        config = Path(work) / "prometheus.yml"
        config.write_text("global: {}\nscrape_configs: []\n")
        print(f"serving {run_dir} on {ui_url(address, args.port)} (run started "
              f"{info.get('started', '?')}, lasted {info.get('duration_s', '?')}s); Ctrl-C "
              "stops", flush=True)
        proc = subprocess.Popen([binary, f"--config.file={config}",
                                 f"--storage.tsdb.path={data}",
                                 f"--web.listen-address={address}:{args.port}",
                                 "--storage.tsdb.retention.time=100y", "--log.level=warn"])
        try:
            return proc.wait()
        except KeyboardInterrupt:
            proc.terminate()
            proc.wait(timeout=30)
            return 0
