"""Read a run's results directory (run.json, series.csv, steps.jsonl, summary.json).

The report and `testbed compare` read runs through this one reader, so both agree on
what a run holds and both name the file and line when something in it is broken. Only
run.json and series.csv are required: a run interrupted before its outcome was computed
still has plots worth seeing.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from testbed.errors import ResultsError

Series = list[tuple[float, float]]  # (seconds since run start, value), sorted by time
HEADER = ("t", "series", "value")


@dataclass(frozen=True)
class RunResults:
    """Everything one results/<run-id>/ directory holds, parsed."""

    run_dir: Path
    info: dict[str, Any]  # run.json
    series: dict[str, Series]  # series.csv, by series name
    steps: list[dict[str, Any]]  # steps.jsonl, in file order
    summary: dict[str, Any]  # summary.json ({} when the run never got that far)

    @property
    def run_id(self) -> str:
        return str(self.info.get("run_id") or self.run_dir.name)

    @property
    def scenario(self) -> str:
        return str(self.info.get("scenario") or "?")

    @property
    def label(self) -> str:
        """How a run is named in comparisons: two runs of one scenario stay apart."""
        return f"{self.scenario} ({self.run_id})"

    @property
    def complete(self) -> bool:
        return self.info.get("complete") is not False and self.summary.get("complete") \
            is not False

    @property
    def trigger(self) -> tuple[float, float] | None:
        """The restart wave (first .. last host going down), if the run had one."""
        trigger = self.info.get("trigger")
        if not isinstance(trigger, dict):
            return None
        start, end = number(trigger.get("start")), number(trigger.get("end"))
        if start is None:
            return None
        return start, max(start, end if end is not None else start)

    def marks(self) -> list[tuple[float, str]]:
        """(time, text) of the scenario's `mark` steps, as executed."""
        found = []
        for step in self.steps:
            if step.get("action") != "mark":
                continue
            t = number(step.get("actual"))
            t = number(step.get("planned")) if t is None else t
            if t is not None:
                found.append((t, str(step.get("text") or step.get("outcome") or "")))
        return sorted(found)

    def last_sample(self) -> float | None:
        """The latest time any series has a sample: how far the results reach."""
        return max((points[-1][0] for points in self.series.values() if points), default=None)

    def end_time(self) -> float:
        """Where the time axis ends: the run's length, or its data if that goes further."""
        ends = [number(self.info.get("duration_s")), self.last_sample()]
        trigger = self.trigger
        if trigger:
            ends.append(trigger[1])
        return max((t for t in ends if t is not None), default=0.0)


def number(value: object) -> float | None:
    """A finite JSON number as float, else None (JSON files are read without a schema)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def load_series(path: Path) -> dict[str, Series]:
    """series.csv (header t,series,value; one sample a row) as {name: [(t, value)]}.

    Streams the file, so hours of samples at 1 s stay cheap. Non-finite values (a gap
    in a PromQL result) are skipped; anything else unparsable raises naming file:line.
    """
    found: dict[str, Series] = {}
    try:
        with open(path, newline="", encoding="utf-8") as source:
            rows = csv.reader(source)
            header = next(rows, None)
            if header is None:
                return found  # an empty file: the run recorded nothing
            if tuple(cell.strip() for cell in header) != HEADER:
                raise ResultsError(f"{path}:{rows.line_num}: the header is "
                                   f"{','.join(header)!r}; expected 't,series,value'")
            for row in rows:
                if not row or not any(cell.strip() for cell in row):
                    continue
                name, t, value = _parse_row(row, path, rows.line_num)
                if math.isfinite(value):
                    found.setdefault(name, []).append((t, value))
    except FileNotFoundError as exc:
        raise ResultsError(f"{path}: missing (every run directory has one, written when "
                           "`testbed run` ends)") from exc
    except OSError as exc:
        raise ResultsError(f"{path}: cannot be read: {exc.strerror}") from exc
    except (csv.Error, UnicodeDecodeError) as exc:
        raise ResultsError(f"{path}: not a CSV text file: {exc}") from exc
    for points in found.values():
        points.sort()
    return found


def _parse_row(row: list[str], path: Path, line: int) -> tuple[str, float, float]:
    where = f"{path}:{line}"
    if len(row) != len(HEADER):
        raise ResultsError(f"{where}: expected 3 fields (t,series,value), found {len(row)}: "
                           f"{','.join(row)!r}")
    t_text, name, value_text = (cell.strip() for cell in row)
    if not name:
        raise ResultsError(f"{where}: the series name is empty")
    try:
        t = float(t_text)
    except ValueError:
        raise ResultsError(f"{where}: time {t_text!r} is not a number of seconds") from None
    if not math.isfinite(t):
        raise ResultsError(f"{where}: time {t_text!r} is not a finite number of seconds")
    try:
        value = float(value_text)
    except ValueError:
        raise ResultsError(f"{where}: value {value_text!r} of series {name!r} is not a "
                           "number") from None
    return name, t, value


def load_run(run_dir: Path) -> RunResults:
    """A results directory. run.json and series.csv must exist; steps.jsonl and
    summary.json may be missing (an interrupted run), but not broken."""
    if not run_dir.is_dir():
        raise ResultsError(f"{run_dir}: no such run directory")
    run_json = run_dir / "run.json"
    if not run_json.is_file():
        raise ResultsError(f"{run_json}: missing; is {run_dir} a directory written by "
                           "`testbed run`?")
    info = _load_json_object(run_json)
    series = load_series(run_dir / "series.csv")
    summary_json = run_dir / "summary.json"
    summary = _load_json_object(summary_json) if summary_json.is_file() else {}
    return RunResults(run_dir, info, series, _load_steps(run_dir / "steps.jsonl"), summary)


def _load_json_object(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ResultsError(f"{path}:{exc.lineno}: not valid JSON: {exc.msg}") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ResultsError(f"{path}: cannot be read: {exc}") from exc
    if not isinstance(data, dict):
        raise ResultsError(f"{path}: expected a JSON object, found {type(data).__name__}")
    return data


def _load_steps(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    steps = []
    try:
        with open(path, encoding="utf-8") as source:
            for line_no, line in enumerate(source, start=1):
                if not line.strip():
                    continue
                try:
                    entry = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise ResultsError(f"{path}:{line_no}: not a JSON object: {exc.msg}"
                                       ) from exc
                if not isinstance(entry, dict):
                    raise ResultsError(f"{path}:{line_no}: expected a JSON object")
                steps.append(entry)
    except (OSError, UnicodeDecodeError) as exc:
        raise ResultsError(f"{path}: cannot be read: {exc}") from exc
    return steps
