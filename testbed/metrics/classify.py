"""Outcome classes of a run, with stated definitions (summary.json's `outcome_class`).

A metastable failure (CALIBRATION.md, "Retry storms") is a bad state that outlives its
trigger. The trigger is over when the last rebooted (or crashed) host is back; the run is
judged `judge_after` seconds later, on the online fraction from then to the end:

- `metastable`: its median is below `bad_below`: the network stayed down without a cause;
- `recovered`: the final online fraction (median over the last `settle` seconds) is at
  least `recovered_at`;
- `degraded`: neither: up again, but short of `recovered_at`;
- `undetermined`: nothing to judge: no trigger, or the run ended before the judging time.

Thresholds come from the scenario file's `outcome:` (defaults below). Pure: unit-tested
on hand-made series.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

Series = list[tuple[float, float]]
CLASSES = ("recovered", "degraded", "metastable", "undetermined")
DOWN_ACTIONS = ("host_down", "kill")
BACK_ACTIONS = ("host_up", "start")


@dataclass
class OutcomeThresholds:
    """The scenario's `outcome:`: how a run is classified."""

    bad_below: float = field(default=0.5, metadata={
        "doc": "online fraction under which the network counts as down (default 0.5)",
        "min": 0.0, "max": 1.0})
    recovered_at: float = field(default=0.95, metadata={
        "doc": "online fraction that counts as recovered (default 0.95)", "min": 0.0,
        "max": 1.0})
    judge_after: float = field(default=60.0, metadata={
        "doc": "judge this long after the last rebooted host is back (default 60s)",
        "unit": "duration"})
    settle: float = field(default=20.0, metadata={
        "doc": "the final online fraction is the median over the run's last settle "
               "seconds (default 20s)", "unit": "duration"})


@dataclass(frozen=True)
class TriggerSpan:
    start: float  # the first host going down
    over: float  # the last host back (or the last going down when none comes back)


def trigger_span(entries: list[dict[str, Any]]) -> TriggerSpan | None:
    """From step log entries (steps.jsonl): first down to the last host back after it."""
    downs = [float(e["actual"]) for e in entries
             if e.get("action") in DOWN_ACTIONS and "actual" in e]
    if not downs:
        return None
    backs = [float(e["actual"]) for e in entries
             if e.get("action") in BACK_ACTIONS and "actual" in e and float(e["actual"])
             >= min(downs)]
    return TriggerSpan(min(downs), max([*downs, *backs]))


def read_step_log(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def classify(online: Series, span: TriggerSpan | None, thresholds: OutcomeThresholds,
             end: float | None = None) -> dict[str, Any]:
    """The class, why, and the time to recover (seconds from the trigger's start until the
    online fraction reaches `recovered_at` after its low point, None if it never did)."""
    points = sorted(online)
    end = end if end is not None else (points[-1][0] if points else 0.0)
    out: dict[str, Any] = {"outcome_class": "undetermined", "outcome_reason": "",
                           "time_to_recover_s": None, "trigger_over_s": None,
                           "judged_from_s": None, "thresholds": thresholds.__dict__.copy()}
    if span is None:
        out["outcome_reason"] = "no trigger (no host went down) to judge against"
        return out
    judged = span.over + thresholds.judge_after
    out.update(trigger_over_s=round(span.over, 1), judged_from_s=round(judged, 1))
    after = [(t, v) for t, v in points if t >= span.start]
    if after:
        low_t = min(after, key=lambda p: p[1])[0]
        back = next((t for t, v in after if t >= low_t and v >= thresholds.recovered_at - 1e-9),
                    None)
        out["time_to_recover_s"] = None if back is None else round(back - span.start, 1)
    tail = [v for t, v in points if t >= judged]
    if judged > end or not tail:
        out["outcome_reason"] = (f"the run ended at {end:.0f}s, before the judging time "
                                 f"{judged:.0f}s (last host back + {thresholds.judge_after:g}s)")
        return out
    final = [v for t, v in points if t >= end - thresholds.settle] or tail[-1:]
    tail_median, final_median = statistics.median(tail), statistics.median(final)
    out["final_online_median"] = round(final_median, 4)
    if tail_median < thresholds.bad_below:
        out["outcome_class"] = "metastable"
        out["outcome_reason"] = (f"median online {tail_median:.0%} from {judged:.0f}s on, "
                                 f"{thresholds.judge_after:g}s after the last host was back, "
                                 f"is below {thresholds.bad_below:.0%}")
    elif final_median >= thresholds.recovered_at - 1e-9:
        out["outcome_class"] = "recovered"
        out["outcome_reason"] = (f"median online {final_median:.0%} over the last "
                                 f"{thresholds.settle:g}s reaches {thresholds.recovered_at:.0%}")
    else:
        out["outcome_class"] = "degraded"
        out["outcome_reason"] = (f"median online {tail_median:.0%} from {judged:.0f}s on is "
                                 f"not below {thresholds.bad_below:.0%}, but only "
                                 f"{final_median:.0%} at the end (< "
                                 f"{thresholds.recovered_at:.0%})")
    return out
