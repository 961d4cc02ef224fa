"""Which runs need recovering: an incomplete run.json without summary.json, found from a
lab's journaled Prometheus whose `testbed run` is gone."""

from __future__ import annotations

import json
from pathlib import Path

from testbed.metrics.offline import recorded_tsdb
from testbed.metrics.recover import needs_recovery, orphaned_runs
from testbed.process.records import ProcessRecord


def _run(tmp_path: Path, name: str, complete: bool, summary: bool) -> Path:
    run_dir = tmp_path / name
    (run_dir / "prometheus" / "data").mkdir(parents=True)
    (run_dir / "run.json").write_text(json.dumps({"complete": complete}))
    if summary:
        (run_dir / "summary.json").write_text("{}")
    return run_dir


def test_only_an_unfinished_run_needs_recovery(tmp_path: Path) -> None:
    killed = _run(tmp_path, "killed", complete=False, summary=False)
    interrupted = _run(tmp_path, "ctrl-c", complete=False, summary=True)
    finished = _run(tmp_path, "done", complete=True, summary=True)
    assert needs_recovery(killed)
    assert not needs_recovery(interrupted) and not needs_recovery(finished)
    assert not needs_recovery(tmp_path / "missing")
    dead = 2**22 + 17  # above pid_max's default: no such process
    records = [ProcessRecord("", "prometheus", dead, 1, "ns", str(run / "prometheus" /
                                                                   "prometheus.log"))
               for run in (killed, interrupted, finished)]
    records.append(ProcessRecord("home1", "peer", dead, 1, "ns", str(killed / "x.log")))
    assert orphaned_runs(records) == [killed]


def test_the_recorded_tsdb_is_the_snapshot_else_the_live_data(tmp_path: Path) -> None:
    run_dir = _run(tmp_path, "r", complete=False, summary=False)
    assert recorded_tsdb(run_dir) is None  # empty directories hold no data
    (run_dir / "prometheus" / "data" / "wal").mkdir()
    assert recorded_tsdb(run_dir) == run_dir / "prometheus" / "data"
    (run_dir / "tsdb" / "01ABC").mkdir(parents=True)
    assert recorded_tsdb(run_dir) == run_dir / "tsdb"
