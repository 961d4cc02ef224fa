"""The calibration table: each dimensionless outcome next to CALIBRATION.md's figure."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from testbed.metrics.calibration import calibration_rows, calibration_values
from testbed.metrics.report import write_report
from testbed.metrics.series import load_run
from tests.unit.test_report import make_run, series_rows


def _with(run_dir: Path, rows: list[str], params: dict[str, object] | None = None) -> Path:
    with open(run_dir / "series.csv", "a") as out:
        out.write("\n".join(rows) + "\n")
    if params is not None:
        info = json.loads((run_dir / "run.json").read_text())
        info["params"] = params
        (run_dir / "run.json").write_text(json.dumps(info))
    return run_dir


def test_each_figure_is_computed_from_the_run_and_compared(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path, "RUN-1", summary={"min_online_fraction": 0.05,
                                                   "clients_needing_login": 89})
    # steady state 1,000 B/s before the trigger at 10 s, 3,000 B/s after it
    signalling = [f"{t},signalling_bytes_per_s,{1000 if t < 10 else 3000}" for t in range(301)]
    # 2 supernodes take 8 joins/s at t=20 on a nominal 0.4/s per real s at scale 0.2 (2/s)
    joins = [f"{t},sn_joins_per_s,{16 if t == 20 else 1}" for t in range(301)]
    storm = [float(r.split(",")[2]) for r in series_rows(False)[1:]
             if ",login_attempts_per_s," in r]
    values = calibration_values(load_run(_with(run_dir, signalling + joins,
                                               {"sn_joins": 0.4})))
    assert values["trough_2007"] == pytest.approx(0.05)
    assert values["signalling"] == pytest.approx(3.0, rel=0.01)
    assert values["supernode_load"] == pytest.approx(4.0)  # 16/s / 2 SNs / 2 per lab s
    # a normal login is the 2007 policy's
    # one round of 4 probes; afterwards the storm's probes over 89 clients
    assert values["peers_contacted"] == pytest.approx(
        sum((a + b) / 2 for a, b in zip(storm[10:], storm[11:], strict=False)) / 89 / 4,
        rel=0.01)
    rows = {r.figure.key: r for r in calibration_rows(load_run(run_dir))}
    assert rows["trough_2007"].ratio == pytest.approx(2.0)  # 5 % against 2.5 %
    assert rows["signalling"].ratio == pytest.approx(1.0, rel=0.01)


def test_peers_contacted_compares_relogin_cost_with_a_normal_login(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path, "RUN-2", recovers=True, summary={"clients_needing_login": 10})
    rows = (run_dir / "series.csv").read_text().splitlines()
    rows = [r for r in rows if ",login_attempts_per_s," not in r]
    rows += [f"{t},login_attempts_per_s,{1 if t <= 10 else 2}" for t in range(301)]
    (run_dir / "series.csv").write_text("\n".join(rows) + "\n")
    value = calibration_values(load_run(run_dir))["peers_contacted"]
    # 580 probes after the trigger at 10 s for 10 clients; a fixed login probes 1 supernode
    assert value == pytest.approx(58.0, rel=0.01)


def test_every_report_has_the_table_with_ratios(tmp_path: Path) -> None:
    text = write_report(make_run(tmp_path, "RUN-3")).read_text()
    assert "Against the measured outage" in text
    assert "2-3 % of normal" in text and "~10x more" in text and "~100x normal" in text
    assert "1.65 (within 2x)" in text  # 4.12 % trough against 2.5 %
    # no bytes series, no clients_needing_login, no sn_joins in this synthetic run
    assert text.count("not measured in this run") == 3
