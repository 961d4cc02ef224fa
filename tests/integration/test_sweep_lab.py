"""`testbed sweep` end to end on a tiny lab: 2 cells x 1 seed, then the same command again
resumes with nothing left to run."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from testbed.metrics.classify import CLASSES
from tests.conftest import run_cli, unique_lab_name

pytestmark = [pytest.mark.root, pytest.mark.slow]

TOPOLOGY = """\
name: {name}
params: {{policy: "2007", sn_overload: drop-role}}
overlay:
  policy: ${{policy}}
  time_scale: 0.2
  warmup: 3s
  supernode:
    min_uptime: 30s
    overload: ${{sn_overload}}
nodes:
  core: {{kind: router}}
  login: {{kind: login, uplink: {{to: core}}}}
  sn{{n}}: {{count: 2, kind: peer, labels: {{sn_capable: true}}, uplink: {{to: core}}}}
  pc{{n:02}}: {{count: 6, kind: peer, uplink: {{to: core}}}}
"""

SCENARIO = """\
name: tiny-wave
seed: 7
duration: 40s
outcome: {judge_after: 10s, settle: 5s}
steps:
  - at: 0s
    action: wait_until
    query: (sum(peer_logged_in{kind="peer"}) / count(peer_info{kind="peer"})) >= 0.95
    timeout: 60s
  - at: 3s
    action: restart_wave
    select: {kind: peer, fraction: 0.5}
    window: 3s
    down_time: {kind: uniform, min: 3s, max: 5s}
    mode: hard
"""


def test_a_two_cell_sweep_runs_writes_its_outputs_and_resumes(tmp_path: Path) -> None:
    name = unique_lab_name("sw")
    (tmp_path / "tiny.yaml").write_text(TOPOLOGY.format(name=name))
    (tmp_path / "wave.yaml").write_text(SCENARIO)
    args = ("sweep", str(tmp_path / "tiny.yaml"), str(tmp_path / "wave.yaml"),
            "--grid", "policy=2007,fixed", "--results", str(tmp_path / "out"), "--name", "sw",
            "--ui-port", "19391")
    first = run_cli(*args, state_dir=tmp_path / "state", timeout=600)
    assert first.returncode == 0, first.stderr[-3000:]
    root = tmp_path / "out" / "sw"
    rows = list(csv.DictReader((root / "sweep.csv").open()))
    assert [r["policy"] for r in rows] == ["2007", "fixed"]
    assert all(r["outcome_class"] in CLASSES for r in rows)
    for row in rows:
        run_dir = Path(row["run_dir"])
        summary = json.loads((run_dir / "summary.json").read_text())
        assert summary["outcome_class"] == row["outcome_class"]
        assert json.loads((run_dir / "run.json").read_text())["seed"] == 7
        assert "Against the measured outage" in (run_dir / "report" / "report.html"
                                                 ).read_text()
    data = json.loads((root / "sweep.json").read_text())
    assert data["runs_finished"] == data["runs_planned"] == 2
    assert "Phase diagram" in (root / "sweep.html").read_text()
    assert "ETA" in first.stderr
    again = run_cli(*args, state_dir=tmp_path / "state", timeout=120)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "2 finished earlier (resumed), 0 to run" in again.stderr
    assert "lab up" not in again.stderr  # nothing was built
