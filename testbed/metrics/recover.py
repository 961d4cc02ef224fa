"""`testbed results recover RUN`: finish the results of a run that was killed outright
(SIGKILL, power loss, OOM) from what it left on disk.

A killed run has run.json (`complete: false`), its step log, its pcaps and its
Prometheus's data directory, but none of what the run writes at its end. Recovery starts
a Prometheus on that data (offline.py; the write-ahead log is replayed, so the last
seconds are there too), then writes what the run would have: series.csv, summary.json
(marked `complete: false, recovered: true`), a TSDB snapshot (tsdb/), captures/index.json
from the pcaps and their tcpdump logs, and the report. The computations are the run's
own (metrics/outcome.py, the run's trigger), called, not copied.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from testbed.capture.tcpdump import index_from_disk, update_index
from testbed.errors import TestbedError
from testbed.metrics.offline import OfflinePrometheus, recorded_tsdb
from testbed.plan.model import NetworkPlan

USERS = 'up{job="peers",kind="peer",held_back!="true"}'  # every overlay user's target


def needs_recovery(run_dir: Path) -> bool:
    """A run that stopped without writing its end: run.json incomplete, no summary.json."""
    try:
        info = json.loads((run_dir / "run.json").read_text())
    except (OSError, ValueError):
        return False
    return not info.get("complete") and not (run_dir / "summary.json").exists()


def still_going(info: dict[str, Any]) -> int | None:
    """The pid of the process writing a run that has not ended (run.json's `runner`,
    alive and the same process), else None: that run writes its own results."""
    runner = info.get("runner") or {}
    if info.get("ended_unix") or not runner.get("pid"):
        return None
    from testbed.process.supervisor import start_time

    pid = int(runner["pid"])
    return pid if start_time(pid) == runner.get("start_time") else None


def recover(run_dir: Path, say: Callable[[str], None] = print, report: bool = True
            ) -> dict[str, Any]:
    """Write the interrupted run's results from disk; returns its summary."""
    run_dir = Path(run_dir)
    if not (run_dir / "run.json").is_file():
        raise TestbedError(f"{run_dir} is not a run directory (no run.json)")
    info = json.loads((run_dir / "run.json").read_text())
    pid = still_going(info)
    if pid is not None:  # recovering would take its Prometheus's data from under it
        raise TestbedError(f"{run_dir} is still going (its `testbed run` is pid {pid}); it "
                           "writes its own results when it ends. Recover a run only once "
                           "its process is gone (killed, out of memory, power loss)")
    summary: dict[str, Any] = {}
    captures = run_dir / "captures"
    if captures.is_dir():
        entries = index_from_disk(captures, run_dir)
        if entries:
            update_index(captures / "index.json", *entries)
            say(f"captures/index.json: {len(entries)} captures")
    tsdb = recorded_tsdb(run_dir)
    started = info.get("started_unix")
    if tsdb is None:
        say("no Prometheus data on disk (prometheus/data or tsdb/): no series to recover")
    elif not started:
        say("the scenario never started (run.json has no started_unix): no series")
    else:
        with OfflinePrometheus(tsdb) as prometheus:
            summary, ended = _outcome(run_dir, info, prometheus, float(started))
            if not (run_dir / "tsdb").is_dir() and prometheus.snapshot(run_dir / "tsdb"):
                say("tsdb/: snapshot written")
        if (run_dir / "tsdb").is_dir() and tsdb != run_dir / "tsdb":
            shutil.rmtree(tsdb, ignore_errors=True)  # as a finished run: the snapshot only
        info["duration_s"] = round(ended - float(started), 1)
    info.update(complete=False, recovered_unix=round(time.time(), 3),
                error=info.get("error") or "the run stopped without finishing (killed?); "
                "results recovered from disk by `testbed results recover`")
    (run_dir / "run.json").write_text(json.dumps(info, indent=1))
    if report:
        try:
            from testbed.metrics.report import write_report

            say(f"report: {write_report(run_dir)}")
        except Exception as exc:  # noqa: BLE001 - the data is kept even if a plot fails
            say(f"report failed ({exc}); the data is in {run_dir}")
    return summary


def _outcome(run_dir: Path, info: dict[str, Any], prometheus: OfflinePrometheus,
             started: float) -> tuple[dict[str, Any], float]:
    from testbed.scenario.run.results import write_outcome  # what a finished run does

    step = float(info.get("scrape_interval_s") or 1.0)
    ended = _run_end(prometheus, started, step)
    peers = [r["metric"].get("node", "") for r in prometheus.query_range(USERS, started,
                                                                          ended, step)]
    summary = {**write_outcome(run_dir, prometheus, peers, int(info.get("peers") or 0),
                               started, ended, step, complete=False,
                               workload=str(info.get("workload") or "overlay"),
                               plan=_plan_of(run_dir, info)),
               "recovered": True}
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=1))
    return summary, ended


def _plan_of(run_dir: Path, info: dict[str, Any]) -> NetworkPlan | None:
    """The run's network plan again, from the topology copy and parameters it kept (plans
    are deterministic); None when they cannot be read (the outcome is then the overlay's
    alone, without, say, the P2P CDN's)."""
    from testbed.plan.build import build_plan
    from testbed.topology.loader import load_topology

    params = {k: str(v).lower() if isinstance(v, bool) else str(v)
              for k, v in (info.get("params") or {}).items()}
    try:
        return build_plan(load_topology(run_dir / "topology.yaml", params))
    except (OSError, TestbedError):
        return None


def _run_end(prometheus: OfflinePrometheus, started: float, step: float) -> float:
    """The run's end: the last scrape of its exporter (it lived in the `testbed run`
    process, so it died with it; the lab's Prometheus may have recorded on until
    `testbed down`), else the last sample at all."""
    last = prometheus.last_sample_unix() or started
    alive = [float(t) for result in prometheus.query_range('up{job="testbed"}', started,
                                                           last, step)
             for t, v in result["values"] if float(v) == 1.0]
    return max(alive) if alive else last


def orphaned_runs(processes: list[Any]) -> list[Path]:
    """Runs of a lab (from its journal's process records) that need recovery because
    their `testbed run` is gone: the run's Prometheus logs into <run>/prometheus/, and
    while the run lives, it is that Prometheus's parent."""
    runs = []
    for record in processes:
        if getattr(record, "service", "") != "prometheus" or record.node:
            continue
        run_dir = Path(record.log).parent.parent
        if not needs_recovery(run_dir):
            continue
        if _parent_is_testbed(record.pid, record.start_time):
            continue  # the run is still going: it writes its own results
        runs.append(run_dir)
    return runs


def _parent_is_testbed(pid: int, start_time: int) -> bool:
    from testbed.process.supervisor import start_time as started_at

    if started_at(pid) != start_time:
        return False  # Prometheus itself is gone
    try:
        parent = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        command = Path(f"/proc/{parent}/cmdline").read_bytes().split(b"\0")
    except (OSError, ValueError, IndexError):
        return False
    return any(part.endswith(b"testbed") for part in command) or b"testbed" in command[:3]
