"""A sweep's results: one row per run (sweep.csv), group statistics per cell and factor
effects (sweep.json). Reads run directories through testbed.metrics.series, like the
report does."""

from __future__ import annotations

import csv
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from testbed.errors import ResultsError
from testbed.metrics.calibration import calibration_values
from testbed.metrics.classify import CLASSES
from testbed.metrics.series import load_run, number
from testbed.sweep.grid import Axis, Cell, RunSpec
from testbed.sweep.stats import Effect, Interval, effect, median_interval

# summary.json keys aggregated per cell (then the calibration table's values)
OUTCOMES = ("min_online_fraction", "final_online_fraction", "time_to_recover_s",
            "amplification", "peak_login_attempts_per_s", "supernodes_low", "calls_failed")


@dataclass(frozen=True)
class RunRow:
    spec: RunSpec
    run_dir: Path
    outcome_class: str
    values: dict[str, float | None]


def collect(specs: list[RunSpec], run_dirs: dict[str, Path]) -> list[RunRow]:
    """The finished runs' outcomes (runs without a readable result are left out)."""
    rows = []
    for spec in specs:
        run_dir = run_dirs[spec.run_id]
        try:
            run = load_run(run_dir)
        except ResultsError:
            continue
        if not run.summary:
            continue
        values: dict[str, float | None] = {k: number(run.summary.get(k)) for k in OUTCOMES}
        values.update(calibration_values(run))
        rows.append(RunRow(spec, run_dir, str(run.summary.get("outcome_class",
                                                              "undetermined")), values))
    return rows


def metric_names(rows: list[RunRow]) -> list[str]:
    return list(dict.fromkeys(k for row in rows for k in row.values))


def write_csv(rows: list[RunRow], axes: list[Axis], path: Path) -> None:
    names = metric_names(rows)
    with open(path, "w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow([*(a.name for a in axes), "repeat", "seed", "run_dir", "outcome_class",
                         *names])
        for row in rows:
            writer.writerow([*(row.spec.cell.get(a.name) for a in axes), row.spec.repeat,
                             row.spec.seed, str(row.run_dir), row.outcome_class,
                             *("" if row.values.get(n) is None else f"{row.values[n]:.6g}"
                               for n in names)])


@dataclass(frozen=True)
class Group:
    cell: Cell
    runs: int
    classes: dict[str, int]
    stats: dict[str, Interval]

    @property
    def majority(self) -> str:
        return max(self.classes, key=lambda c: (self.classes[c], -CLASSES.index(c))) \
            if self.classes else "undetermined"


def groups(rows: list[RunRow], cells: list[Cell]) -> list[Group]:
    names = metric_names(rows)
    found = []
    for cell in cells:
        mine = [r for r in rows if r.spec.cell == cell]
        stats = {n: i for n in names
                 if (i := median_interval([r.values.get(n) for r in mine])) is not None}
        found.append(Group(cell, len(mine), dict(Counter(r.outcome_class for r in mine)),
                           stats))
    return found


def effects(rows: list[RunRow], axes: list[Axis]) -> list[Effect]:
    """For every two-level axis, its effect on each metric: with the other axes pooled,
    then at each level of every other axis (in a 2x2: does one change help on its own?)."""
    found = []
    names = [n for n in metric_names(rows) if not n.startswith("trough_")]  # = the minimum
    for axis in axes:
        if len(axis.values) != 2:
            continue
        subsets: list[tuple[str, list[RunRow]]] = [("", rows)]
        subsets += [(f" at {other.name}={v}", [r for r in rows if r.spec.cell.get(other.name)
                                                == v])
                    for other in axes if other is not axis for v in other.values]
        for where, subset in subsets:
            for name in names:
                by_level: dict[str, list[float | None]] = {v: [] for v in axis.values}
                for row in subset:
                    by_level[row.spec.cell.get(axis.name) or ""].append(row.values.get(name))
                made = effect(axis.name + where, (axis.values[0], axis.values[1]), name,
                              by_level)
                if made is not None:
                    found.append(made)
    return found


def classified(rows: list[RunRow], axis: Axis) -> dict[str, dict[str, int]]:
    """Outcome classes per level of one axis (the other axes pooled)."""
    return {v: dict(Counter(r.outcome_class for r in rows if r.spec.cell.get(axis.name) == v))
            for v in axis.values}


def write_json(rows: list[RunRow], axes: list[Axis], cells: list[Cell], plan: dict[str, Any],
               path: Path) -> dict[str, Any]:
    data = {
        "plan": plan,
        "runs_finished": len(rows),
        "runs_planned": len(cells) * int(plan.get("repeat", 1)),
        "groups": [{"cell": dict(g.cell.values), "runs": g.runs, "classes": g.classes,
                    "majority_class": g.majority,
                    "stats": {k: v.as_dict() for k, v in g.stats.items()}}
                   for g in groups(rows, cells)],
        "effects": [{"factor": e.factor, "from": e.from_level, "to": e.to_level,
                     "metric": e.metric, "before": e.before.as_dict(),
                     "after": e.after.as_dict(), "change": round(e.change, 6),
                     "bounds": [round(b, 6) for b in e.bounds],
                     "beyond_intervals": e.beyond_intervals}
                    for e in effects(rows, axes)],
        "classes_by_factor": {a.name: classified(rows, a) for a in axes},
    }
    path.write_text(json.dumps(data, indent=1))
    return data
