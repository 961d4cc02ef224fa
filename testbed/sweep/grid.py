"""A sweep's grid: `--grid NAME=V1,V2` axes, their cells (the cartesian product), and the
runs of each cell (`--repeat N`, seeds derived from the scenario's seed).

Names are checked against what the files declare before anything is built: a topology
parameter (the topology's or the scenario's `params:`) or a scenario setting of
SCENARIO_KEYS. Pure.
"""

from __future__ import annotations

import difflib
import itertools
import re
from dataclasses import dataclass
from pathlib import Path

from testbed.errors import Problem, SweepError
from testbed.topology.source import SourceDict, YamlSourceError, load_yaml

SCENARIO_KEYS = {"duration": "the scenario's total run time, like --duration"}
SAFE = re.compile(r"[^A-Za-z0-9.+-]+")


@dataclass(frozen=True)
class Axis:
    name: str
    values: tuple[str, ...]


@dataclass(frozen=True)
class Cell:
    """One point of the grid: (name, value) per axis, in the grid's order."""

    values: tuple[tuple[str, str], ...]

    @property
    def id(self) -> str:
        """A directory-safe name, e.g. policy-2007__sn_overload-busy ('base': no axes)."""
        return "__".join(f"{n}-{SAFE.sub('_', v)}" for n, v in self.values) or "base"

    @property
    def label(self) -> str:
        return ", ".join(f"{n}={v}" for n, v in self.values) or "(no grid)"

    def get(self, name: str) -> str | None:
        return dict(self.values).get(name)


@dataclass(frozen=True)
class RunSpec:
    cell: Cell
    repeat: int  # 0-based
    seed: int

    @property
    def run_id(self) -> str:
        return f"{self.cell.id}__r{self.repeat}"


def parse_axes(texts: list[str]) -> list[Axis]:
    """`NAME=V1,V2,...` strings as axes; every malformed one is reported."""
    axes: list[Axis] = []
    problems = []
    for text in texts:
        name, sep, rest = text.partition("=")
        name = name.strip()
        values = tuple(v.strip() for v in rest.split(",") if v.strip())
        if not sep or not name or not values:
            problems.append(Problem(f"--grid {text!r}: expected NAME=V1,V2,... (e.g. "
                                    "--grid sn_joins=0.2,0.4)"))
        elif any(a.name == name for a in axes):
            problems.append(Problem(f"--grid {name}: given twice; list every value once"))
        elif len(set(values)) != len(values):
            problems.append(Problem(f"--grid {name}: a value is listed twice: {rest}"))
        else:
            axes.append(Axis(name, values))
    if problems:
        raise SweepError(problems)
    return axes


def allowed_names(topology: Path, scenario: Path) -> dict[str, str]:
    """What a grid may vary: {name: where it is declared}."""
    found: dict[str, str] = {}
    for path, what in ((topology, "topology parameter"), (scenario, "scenario parameter")):
        try:
            raw = load_yaml(path)
        except YamlSourceError as exc:
            raise SweepError(exc.problems) from None
        params = raw.get("params") if isinstance(raw, SourceDict) else None
        if isinstance(params, dict):
            for key in params:
                found.setdefault(str(key), f"{what} ({path})")
    for key, meaning in SCENARIO_KEYS.items():
        found.setdefault(key, f"scenario setting: {meaning}")
    return found


def check_names(axes: list[Axis], allowed: dict[str, str]) -> None:
    problems = []
    for axis in axes:
        if axis.name not in allowed:
            close = difflib.get_close_matches(axis.name, list(allowed), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            problems.append(Problem(f"--grid {axis.name}: not a parameter of the topology or "
                                    f"scenario{hint}; allowed: {', '.join(sorted(allowed))}"))
    if problems:
        raise SweepError(problems)


def expand(axes: list[Axis]) -> list[Cell]:
    """Every combination, the first axis varying slowest."""
    return [Cell(tuple(zip((a.name for a in axes), combo, strict=True)))
            for combo in itertools.product(*(a.values for a in axes))]


def runs_of(cells: list[Cell], repeat: int, base_seed: int) -> list[RunSpec]:
    """Repeat r of every cell uses seed base + r: repeat 0 is the scenario's own seed, and
    the cells of one repeat share their seed (the same hosts reboot at the same times), so
    cells differ only in what the grid changes."""
    if repeat < 1:
        raise SweepError([Problem(f"--repeat {repeat}: must be at least 1")])
    return [RunSpec(cell, r, base_seed + r) for r in range(repeat) for cell in cells]
