"""Run a sweep: check every cell before anything is built, then run what is not finished,
one run at a time, with progress and an ETA; write sweep.csv, sweep.json and sweep.html
after every run, so an interrupted sweep already shows what it has."""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from testbed.errors import InputError, Problem, SweepError
from testbed.sweep import execute as session
from testbed.sweep.grid import Axis, Cell, RunSpec, allowed_names, check_names, expand, runs_of
from testbed.sweep.page import write_page
from testbed.sweep.results import collect, effects, groups, write_csv, write_json
from testbed.sweep.store import SweepStore

Execute = Callable[[Any], tuple[Path, bool]]
Check = Callable[[Any], int]


@dataclass
class SweepRequest:
    topology: Path
    scenario: Path
    axes: list[Axis]
    repeat: int
    root: Path  # the sweep's directory
    base: Any  # RunOptions every run starts from (overrides, scrape interval, ...)
    out: TextIO = field(default=sys.stderr)


@dataclass(frozen=True)
class SweepPlan:
    cells: list[Cell]
    specs: list[RunSpec]
    manifest: dict[str, Any]


def plan_sweep(request: SweepRequest, check: Check = session.check) -> SweepPlan:
    """Names against the files, then every cell loaded and resolved: a bad name or value
    fails here, before any lab exists, with every problem at once."""
    check_names(request.axes, allowed_names(request.topology, request.scenario))
    cells = expand(request.axes)
    problems: list[Problem] = []
    seeds: list[int] = []
    for cell in cells:
        try:
            seeds.append(check(session.options_for(request.base, cell, request.base.seed,
                                                   request.root / "runs", cell.id)))
        except (InputError, ValueError) as exc:
            problems.append(Problem(f"cell {cell.label}: {exc}"))
    if problems:
        raise SweepError(problems)
    base_seed = request.base.seed if request.base.seed is not None else seeds[0]
    specs = runs_of(cells, request.repeat, base_seed)
    manifest = {"topology": str(request.topology), "scenario": str(request.scenario),
                "grid": {a.name: list(a.values) for a in request.axes},
                "repeat": request.repeat, "base_seed": base_seed,
                "overrides": dict(sorted(request.base.overrides.items())),
                "duration": request.base.duration}
    return SweepPlan(cells, specs, manifest)


def eta_text(times: list[float], remaining: int) -> str:
    if not times:
        return "ETA after the first run"
    left = statistics.fmean(times) * remaining
    return f"ETA {left / 60:.0f} min" if left >= 90 else f"ETA {left:.0f} s"


def write_outputs(store: SweepStore, plan: SweepPlan, axes: list[Axis]) -> Path:
    finished = [s for s in plan.specs if store.finished(s)]
    rows = collect(finished, {s.run_id: store.run_dir(s) for s in finished})
    write_csv(rows, axes, store.root / "sweep.csv")
    write_json(rows, axes, plan.cells, plan.manifest, store.root / "sweep.json")
    return write_page(store.root / "sweep.html", plan.manifest, axes,
                      groups(rows, plan.cells), effects(rows, axes), len(rows),
                      len(plan.specs))


def run_sweep(request: SweepRequest, execute: Execute = session.execute,
              check: Check = session.check) -> Path:
    """Returns sweep.html's path. Raises KeyboardInterrupt when a run was interrupted
    (after writing what the sweep has): the same command resumes."""
    plan = plan_sweep(request, check)
    store = SweepStore(request.root)
    resumed = store.open(plan.manifest)
    todo = [s for s in plan.specs if not store.finished(s)]
    say = request.out.write
    say(f"== sweep {request.root}: {len(plan.cells)} cell(s) x {request.repeat} = "
        f"{len(plan.specs)} runs; {len(plan.specs) - len(todo)} finished"
        f"{' earlier (resumed)' if resumed else ''}, {len(todo)} to run\n")
    for index, spec in enumerate(todo):
        moved = store.set_aside(spec)
        if moved is not None:
            say(f"   an unfinished {spec.run_id} was moved to {moved}; running it again\n")
        done = len(plan.specs) - len(todo) + index
        say(f"== [{done + 1}/{len(plan.specs)}] {spec.cell.label}, repeat {spec.repeat + 1} "
            f"(seed {spec.seed}); {eta_text(list(store.times().values()), len(todo) - index)}"
            "\n")
        request.out.flush()
        began = time.monotonic()
        _, complete = execute(session.run_spec_options(request.base, spec, store.runs))
        store.record_time(spec, time.monotonic() - began)
        page = write_outputs(store, plan, request.axes)
        if not complete:
            say(f"== sweep stopped: {spec.run_id} did not finish. Run the same command "
                "again to resume (finished runs are kept and not run again).\n")
            raise KeyboardInterrupt("sweep interrupted")
    page = write_outputs(store, plan, request.axes)
    say(f"== sweep done: {page}, sweep.csv and sweep.json beside it\n")
    return page
