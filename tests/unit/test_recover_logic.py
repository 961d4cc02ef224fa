"""Which runs need recovering: an incomplete run.json without summary.json, found from a
lab's journaled Prometheus whose `testbed run` is gone; a run still going is refused."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from testbed.errors import TestbedError
from testbed.metrics.offline import recorded_tsdb
from testbed.metrics.recover import needs_recovery, orphaned_runs, recover
from testbed.process.records import ProcessRecord
from testbed.process.supervisor import start_time


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


def test_a_run_still_going_is_not_recovered_from_under_its_process(tmp_path: Path) -> None:
    run_dir = _run(tmp_path, "live", complete=False, summary=False)
    me = {"pid": os.getpid(), "start_time": start_time(os.getpid())}
    (run_dir / "run.json").write_text(json.dumps({"complete": False, "ended_unix": None,
                                                  "runner": me}))
    with pytest.raises(TestbedError, match=f"still going .*pid {os.getpid()}"):
        recover(run_dir, say=lambda _: None, report=False)
    assert (run_dir / "prometheus" / "data").is_dir() and not (run_dir / "summary.json"
                                                                 ).exists()
    # its process gone (or ended, or the pid reused by another): recovered
    for info in ({"runner": {**me, "start_time": -1}}, {"runner": me, "ended_unix": 9.0},
                 {}):
        (run_dir / "run.json").write_text(json.dumps({"complete": False, **info}))
        recover(run_dir, say=lambda _: None, report=False)
        assert json.loads((run_dir / "run.json").read_text())["recovered_unix"]
