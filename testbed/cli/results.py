"""`testbed results serve RUN`: reopen a run's Prometheus TSDB snapshot in a Prometheus
on the machine's loopback, to query and graph it after the lab is gone."""

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
    p = sub.add_parser("results", help="work with recorded runs (serve a run's TSDB)",
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
    p.set_defaults(run=run, parser=p)


def run(args: argparse.Namespace) -> int:
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
