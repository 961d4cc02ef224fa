"""Sweeps without a lab: grid expansion, name/value checks, intervals, resume logic."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from testbed.errors import SweepError
from testbed.scenario.run import RunOptions
from testbed.sweep.grid import Axis, allowed_names, check_names, expand, parse_axes, runs_of
from testbed.sweep.runner import SweepRequest, plan_sweep, run_sweep
from testbed.sweep.stats import differs, effect, median_interval

REPO = Path(__file__).parents[2]
TOPOLOGY = REPO / "topologies" / "skype-2007.yaml"
SCENARIO = REPO / "scenarios" / "skype-2007.yaml"


# --- grid -----------------------------------------------------------------------------

def test_the_grid_is_every_combination_first_axis_slowest() -> None:
    axes = parse_axes(["policy=2007,fixed", "sn_overload=drop-role,busy", "homes=20"])
    cells = expand(axes)
    assert [c.label for c in cells] == [
        "policy=2007, sn_overload=drop-role, homes=20", "policy=2007, sn_overload=busy, homes=20",
        "policy=fixed, sn_overload=drop-role, homes=20", "policy=fixed, sn_overload=busy, homes=20"]
    assert cells[0].id == "policy-2007__sn_overload-drop-role__homes-20"
    assert expand([])[0].id == "base"


def test_repeats_derive_seeds_from_the_scenario_seed_and_cells_share_them() -> None:
    cells = expand(parse_axes(["policy=2007,fixed"]))
    runs = runs_of(cells, 3, 2007)
    assert [(r.cell.get("policy"), r.seed) for r in runs] == [
        ("2007", 2007), ("fixed", 2007), ("2007", 2008), ("fixed", 2008), ("2007", 2009),
        ("fixed", 2009)]
    assert len({r.run_id for r in runs}) == 6
    with pytest.raises(SweepError, match="at least 1"):
        runs_of(cells, 0, 1)


@pytest.mark.parametrize(("texts", "message"), [
    (["policy"], "expected NAME=V1,V2"),
    (["policy="], "expected NAME=V1,V2"),
    (["policy=2007", "policy=fixed"], "given twice"),
    (["homes=20,20"], "listed twice"),
])
def test_malformed_axes_are_refused(texts: list[str], message: str) -> None:
    with pytest.raises(SweepError, match=message):
        parse_axes(texts)


def test_unknown_names_fail_listing_the_allowed_ones() -> None:
    allowed = allowed_names(TOPOLOGY, SCENARIO)
    assert {"homes", "sn_joins", "policy", "sn_overload", "duration"} <= set(allowed)
    with pytest.raises(SweepError) as err:
        check_names([Axis("sn_join", ("1",)), Axis("homes", ("4",))], allowed)
    text = str(err.value)
    assert "did you mean 'sn_joins'" in text and "allowed: corp_hosts, duration" in text
    assert "homes" not in text.split("allowed:")[0]


def _request(tmp: Path, grid: list[str], repeat: int = 1, **base: Any) -> SweepRequest:
    options = RunOptions(topology=TOPOLOGY, scenario=SCENARIO,
                         overrides={"homes": "4", "supernodes": "2", "corp_hosts": "1"},
                         **base)
    return SweepRequest(TOPOLOGY, SCENARIO, parse_axes(grid), repeat, tmp / "sw", options,
                        out=io.StringIO())


def test_bad_values_fail_before_anything_is_built_with_every_problem(tmp_path: Path) -> None:
    with pytest.raises(SweepError) as err:
        plan_sweep(_request(tmp_path, ["sn_joins=0.4,abc", "policy=2007,2010"]))
    text = str(err.value)
    assert "cell sn_joins=abc, policy=2007" in text and "expected a number" in text
    assert "choose one of: 2007, fixed" in text
    assert not (tmp_path / "sw").exists()


# --- intervals -------------------------------------------------------------------------

def test_median_interval_uses_order_statistics_and_states_coverage() -> None:
    three = median_interval([0.3, 0.1, 0.2])
    assert three is not None
    assert (three.median, three.low, three.high) == (0.2, 0.1, 0.3)
    assert three.coverage == pytest.approx(0.75)  # 1 - 2/8
    ten = median_interval([float(v) for v in range(1, 11)])
    assert ten is not None
    # n=10: [x(2), x(9)] covers 97.9 %; [x(3), x(8)] only 89 %
    assert (ten.low, ten.high) == (2.0, 9.0) and ten.coverage == pytest.approx(0.9785, 1e-3)
    one = median_interval([None, 4.0])
    assert one is not None and (one.n, one.low, one.high) == (1, 4.0, 4.0)
    assert median_interval([None, None]) is None


def test_differences_count_only_beyond_both_intervals() -> None:
    low = median_interval([0.0, 0.02, 0.05])
    high = median_interval([0.9, 0.97, 1.0])
    overlapping = median_interval([0.04, 0.5, 0.95])
    assert differs(low, high) and not differs(low, overlapping)
    assert not differs(low, median_interval([1.0]))  # one run has no interval
    made = effect("policy", ("2007", "fixed"), "min_online_fraction",
                  {"2007": [0.0, 0.02, 0.05], "fixed": [0.9, 0.97, 1.0]})
    assert made is not None and made.beyond_intervals
    assert made.change == pytest.approx(0.95)
    assert made.bounds == pytest.approx((0.85, 1.0))


# --- resume ------------------------------------------------------------------------------

class FakeRuns:
    """Stands in for `testbed run`: writes what a run writes; can be interrupted."""

    def __init__(self, interrupt_at: int | None = None) -> None:
        self.calls: list[str] = []
        self.interrupt_at = interrupt_at

    def __call__(self, options: RunOptions) -> tuple[Path, bool]:
        self.calls.append(options.run_id or "")
        run_dir = options.results / (options.run_id or "")
        run_dir.mkdir(parents=True)
        complete = len(self.calls) != self.interrupt_at
        policy = options.overrides.get("policy", "2007")
        info = {"run_id": options.run_id, "scenario": "skype-2007", "complete": complete,
                "seed": options.seed, "trigger": {"start": 10.0, "end": 30.0}, "peers": 7}
        (run_dir / "run.json").write_text(json.dumps(info))
        (run_dir / "series.csv").write_text("t,series,value\n0,online_fraction,1\n")
        if complete:
            trough = 0.6 if policy == "fixed" else 0.01 * (options.seed or 0) % 0.05
            (run_dir / "summary.json").write_text(json.dumps({
                "min_online_fraction": trough, "complete": True,
                "outcome_class": "recovered" if policy == "fixed" else "metastable"}))
        return run_dir, complete


def _check(options: RunOptions) -> int:
    return 2007


def test_an_interrupted_sweep_resumes_without_rerunning_finished_runs(tmp_path: Path) -> None:
    request = _request(tmp_path, ["policy=2007,fixed"], repeat=2)
    first = FakeRuns(interrupt_at=3)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(request, execute=first, check=_check)
    assert first.calls == ["policy-2007__r0", "policy-fixed__r0", "policy-2007__r1"]
    partial = json.loads((tmp_path / "sw" / "sweep.json").read_text())
    assert partial["runs_finished"] == 2 and partial["runs_planned"] == 4
    again = FakeRuns()
    page = run_sweep(request, execute=again, check=_check)
    assert again.calls == ["policy-2007__r1", "policy-fixed__r1"]  # the cut one again
    assert (tmp_path / "sw" / "runs" / ".partial" / "policy-2007__r1.1").is_dir()
    assert "resumed" in request.out.getvalue()  # type: ignore[attr-defined]
    assert "ETA" in request.out.getvalue()  # type: ignore[attr-defined]
    done = json.loads((tmp_path / "sw" / "sweep.json").read_text())
    assert done["runs_finished"] == 4
    by_cell = {g["cell"]["policy"]: g for g in done["groups"]}
    assert by_cell["2007"]["classes"] == {"metastable": 2}
    assert by_cell["fixed"]["stats"]["min_online_fraction"]["median"] == 0.6
    rows = (tmp_path / "sw" / "sweep.csv").read_text().splitlines()
    assert rows[0].startswith("policy,repeat,seed,run_dir,outcome_class,min_online_fraction")
    assert len(rows) == 5
    text = page.read_text()
    assert "Phase diagram" in text and "metastable" in text and "recovered" in text
    nothing = FakeRuns()
    run_sweep(request, execute=nothing, check=_check)  # all finished: nothing runs
    assert nothing.calls == []


def test_a_different_sweep_in_the_same_directory_is_refused(tmp_path: Path) -> None:
    run_sweep(_request(tmp_path, ["policy=2007"]), execute=FakeRuns(), check=_check)
    with pytest.raises(SweepError, match="holds another sweep .*grid"):
        run_sweep(_request(tmp_path, ["policy=fixed"]), execute=FakeRuns(), check=_check)


def test_compare_on_groups_says_which_differences_exceed_their_intervals(
        tmp_path: Path) -> None:
    from testbed.cli.main import main

    run_sweep(_request(tmp_path, ["policy=2007,fixed"], repeat=3), execute=FakeRuns(),
              check=_check)
    assert main(["compare", str(tmp_path / "sw"), "-o", str(tmp_path / "cmp")]) == 0
    rows = json.loads((tmp_path / "cmp" / "compare.json").read_text())
    trough = next(r for r in rows if r["metric"] == "min_online_fraction")
    assert (trough["a"], trough["b"]) == ("policy=2007", "policy=fixed")
    assert trough["beyond_intervals"] is True  # [0, 0.04] against [0.6, 0.6]
    assert "3 runs, 75%" in trough["a_interval"]
    assert "larger than the intervals?" in (tmp_path / "cmp" / "compare.html").read_text()


def test_run_repeat_is_a_sweep_without_a_grid(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    import testbed.sweep.runner as runner
    from testbed.cli.main import main

    seen: list[SweepRequest] = []
    monkeypatch.setattr(runner, "run_sweep", lambda request: seen.append(request))
    assert main(["run", str(TOPOLOGY), str(SCENARIO), "--repeat", "3", "--set", "homes=4",
                 "--results", str(tmp_path)]) == 0
    (request,) = seen
    assert (request.axes, request.repeat) == ([], 3)
    assert request.root == tmp_path / "skype-2007-x3"
    assert request.base.overrides == {"homes": "4"} and request.base.run_id is None
    assert [s.seed for s in plan_sweep(request).specs] == [2007, 2008, 2009]


def test_a_factorial_states_each_factor_pooled_and_within_each_level_of_the_other(
        tmp_path: Path) -> None:
    request = _request(tmp_path, ["policy=2007,fixed", "sn_overload=drop-role,busy"], 3)
    run_sweep(request, execute=FakeRuns(), check=_check)
    data = json.loads((tmp_path / "sw" / "sweep.json").read_text())
    trough = {e["factor"]: e for e in data["effects"] if e["metric"] == "min_online_fraction"}
    assert set(trough) == {"policy", "policy at sn_overload=drop-role",
                           "policy at sn_overload=busy", "sn_overload",
                           "sn_overload at policy=2007", "sn_overload at policy=fixed"}
    assert trough["policy at sn_overload=busy"]["beyond_intervals"] is True
    assert trough["policy at sn_overload=busy"]["before"]["n"] == 3
    assert trough["sn_overload at policy=2007"]["beyond_intervals"] is False  # fake: no effect
    assert data["classes_by_factor"]["policy"] == {"2007": {"metastable": 6},
                                                   "fixed": {"recovered": 6}}


@pytest.mark.parametrize(("scenario", "grid", "cells"), [
    ("factorial-2007.yaml", ["policy=2007,fixed", "sn_overload=drop-role,busy"], 4),
    ("capacity-2007.yaml", ["sn_joins=0.4,1,2.5", "login_rate=4,20"], 6),
])
def test_the_shipped_example_sweeps_check(tmp_path: Path, scenario: str, grid: list[str],
                                          cells: int) -> None:
    path = REPO / "scenarios" / "sweeps" / scenario
    options = RunOptions(topology=TOPOLOGY, scenario=path,
                         overrides={"homes": "20", "supernodes": "4", "corp_hosts": "2"})
    request = SweepRequest(TOPOLOGY, path, parse_axes(grid), 1, tmp_path / "sw", options)
    plan = plan_sweep(request)
    assert len(plan.cells) == cells and plan.manifest["base_seed"] == 2007


def test_a_phase_diagram_cell_whose_runs_disagree_is_marked_mixed() -> None:
    from testbed.sweep.page import phase_diagram
    from testbed.sweep.results import Group

    axes = parse_axes(["policy=2007,fixed"])
    cells = expand(axes)
    text = phase_diagram(axes, [Group(cells[0], 3, {"metastable": 1, "recovered": 2}, {}),
                                Group(cells[1], 3, {"recovered": 3}, {})])
    assert "mixed (mostly recovered)" in text and "1 metastable, 2 recovered" in text
    assert text.count("mixed") == 1
