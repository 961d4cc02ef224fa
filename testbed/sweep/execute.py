"""The one place a sweep touches the scenario run: options for a run, checking a cell
(everything that can fail on bad input, nothing built), and running it."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from testbed.sweep.grid import SCENARIO_KEYS, Cell, RunSpec


def options_for(base: Any, cell: Cell, seed: int | None, results: Path, run_id: str) -> Any:
    """RunOptions of one run: the base options with the cell's values on top."""
    from testbed.units import parse_duration

    overrides = dict(base.overrides)
    changes: dict[str, Any] = {}
    for name, value in cell.values:
        if name == "duration":
            changes["duration"] = parse_duration(value if value[-1:].isalpha()
                                                 else f"{value}s")
        elif name not in SCENARIO_KEYS:
            overrides[name] = value
    return dataclasses.replace(base, overrides=overrides, seed=seed, results=results,
                               run_id=run_id, **changes)


def check(options: Any) -> int:
    """Load and resolve a run (raises InputError on a bad value); its scenario's seed."""
    from testbed.scenario.run import prepare

    return int(prepare(options).scenario.seed)


def execute(options: Any) -> tuple[Path, bool]:
    """Run it; (its results directory, whether it completed). Ctrl-C during the run ends
    it early (the run keeps what it gathered) and comes back as not completed."""
    from testbed.scenario.run import Run, prepare

    session = Run(options, prepare(options))
    path = session.execute()
    return path, session.complete


def run_spec_options(base: Any, spec: RunSpec, runs_dir: Path) -> Any:
    return options_for(base, spec.cell, spec.seed, runs_dir, spec.run_id)
