"""Where a sweep keeps its runs, so it resumes: a finished run is never run again.

results/<sweep>/plan.json says what the sweep is (files, grid, repeats, seeds); each run
has its own results directory under runs/. A run is finished when its run.json says
complete and its summary.json exists; anything else left by a crash or Ctrl-C is moved
aside to runs/.partial/ (kept for inspection) and run again.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from testbed.errors import Problem, SweepError
from testbed.sweep.grid import RunSpec


class SweepStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.runs = root / "runs"

    def open(self, plan: dict[str, Any]) -> bool:
        """Create the sweep directory, or check that it holds this same sweep. True when
        it already existed (a resume)."""
        path = self.root / "plan.json"
        if path.exists():
            old = json.loads(path.read_text())
            if old != plan:
                changed = sorted(k for k in {*old, *plan} if old.get(k) != plan.get(k))
                raise SweepError([Problem(
                    f"{self.root} holds another sweep (it differs in: {', '.join(changed)}); "
                    "resume it with the same arguments, or give --name for a new one")])
            return True
        self.runs.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(plan, indent=1))
        return False

    def run_dir(self, spec: RunSpec) -> Path:
        return self.runs / spec.run_id

    def finished(self, spec: RunSpec) -> bool:
        run_dir = self.run_dir(spec)
        try:
            info = json.loads((run_dir / "run.json").read_text())
        except (OSError, ValueError):
            return False
        return info.get("complete") is True and (run_dir / "summary.json").exists()

    def set_aside(self, spec: RunSpec) -> Path | None:
        """Move an unfinished run's directory out of the way; returns where it went."""
        run_dir = self.run_dir(spec)
        if not run_dir.exists():
            return None
        partial = self.runs / ".partial"
        partial.mkdir(exist_ok=True)
        n = 1
        while (partial / f"{spec.run_id}.{n}").exists():
            n += 1
        target = partial / f"{spec.run_id}.{n}"
        run_dir.rename(target)
        return target

    def record_time(self, spec: RunSpec, seconds: float) -> None:
        """Wall time of a run (lab build to removal), for the ETA of later invocations."""
        times = self.times()
        times[spec.run_id] = round(seconds, 1)
        (self.root / "timings.json").write_text(json.dumps(times, indent=1))

    def times(self) -> dict[str, float]:
        try:
            data = json.loads((self.root / "timings.json").read_text())
        except (OSError, ValueError):
            return {}
        return {str(k): float(v) for k, v in data.items() if isinstance(v, int | float)}
