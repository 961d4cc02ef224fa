"""Outcome classes on hand-made online-fraction series."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from testbed.metrics.classify import OutcomeThresholds, TriggerSpan, classify, trigger_span

SPAN = TriggerSpan(start=10.0, over=70.0)  # reboots from 10 s, the last host back at 70 s
DEFAULT = OutcomeThresholds()


def series(*pieces: tuple[float, float, float]) -> list[tuple[float, float]]:
    """(from, to, value) pieces sampled every second."""
    return [(float(t), v) for start, end, v in pieces for t in range(int(start), int(end))]


def test_a_dip_that_comes_back_is_recovered_with_its_time_to_recover() -> None:
    online = series((0, 10, 1.0), (10, 40, 0.6), (40, 55, 0.9), (55, 300, 0.99))
    out = classify(online, SPAN, DEFAULT)
    assert out["outcome_class"] == "recovered"
    assert out["time_to_recover_s"] == 45.0  # 55 s - the trigger's start at 10 s
    assert "95%" in out["outcome_reason"]


def test_down_long_after_the_last_host_is_back_is_metastable() -> None:
    online = series((0, 10, 1.0), (10, 300, 0.03))
    out = classify(online, SPAN, DEFAULT)
    assert out["outcome_class"] == "metastable"
    assert out["time_to_recover_s"] is None
    assert out["judged_from_s"] == 130.0


def test_brief_flickers_up_do_not_hide_a_metastable_state() -> None:
    """A re-promoted supernode lets a few clients in for seconds before it drops again."""
    online = series((0, 10, 1.0), (10, 150, 0.02), (150, 160, 0.8), (160, 300, 0.05))
    assert classify(online, SPAN, DEFAULT)["outcome_class"] == "metastable"


def test_up_but_short_of_the_recovered_level_is_degraded() -> None:
    online = series((0, 10, 1.0), (10, 60, 0.2), (60, 300, 0.8))
    out = classify(online, SPAN, DEFAULT)
    assert out["outcome_class"] == "degraded"
    assert out["time_to_recover_s"] is None


def test_a_late_recovery_counts_when_the_end_is_good() -> None:
    """Down at the judging time, but back and stable at the end: the median decides."""
    online = series((0, 10, 1.0), (10, 250, 0.3), (250, 300, 0.97))
    assert classify(online, SPAN, DEFAULT)["outcome_class"] == "metastable"
    online = series((0, 10, 1.0), (10, 140, 0.3), (140, 300, 0.97))
    out = classify(online, SPAN, DEFAULT)
    assert out["outcome_class"] == "recovered" and out["time_to_recover_s"] == 130.0


def test_thresholds_from_the_scenario_change_the_verdict() -> None:
    online = series((0, 10, 1.0), (10, 300, 0.4))
    assert classify(online, SPAN, DEFAULT)["outcome_class"] == "metastable"
    lenient = OutcomeThresholds(bad_below=0.3, recovered_at=0.9)
    out = classify(online, SPAN, lenient)
    assert out["outcome_class"] == "degraded"
    assert out["thresholds"]["bad_below"] == 0.3


@pytest.mark.parametrize(("span", "end", "why"), [
    (None, None, "no trigger"),
    (SPAN, 100.0, "before the judging time"),
])
def test_nothing_to_judge_is_undetermined(span: TriggerSpan | None, end: float | None,
                                          why: str) -> None:
    online = series((0, 100, 0.1))
    out = classify(online, span, DEFAULT, end)
    assert out["outcome_class"] == "undetermined" and why in out["outcome_reason"]


def test_the_trigger_runs_from_the_first_host_down_to_the_last_back() -> None:
    log = [{"action": "mark", "actual": 1.0},
           {"action": "host_down", "actual": 12.0}, {"action": "host_down", "actual": 30.5},
           {"action": "host_up", "actual": 44.0}, {"action": "host_up", "actual": 71.2},
           {"action": "call", "actual": 150.0}, {"action": "host_down"}]  # never ran
    assert trigger_span(log) == TriggerSpan(12.0, 71.2)
    assert trigger_span([{"action": "kill", "actual": 5.0}]) == TriggerSpan(5.0, 5.0)
    assert trigger_span([{"action": "mark", "actual": 3.0}]) is None


def test_every_threshold_is_documented_with_its_default() -> None:
    text = (Path(__file__).parents[2] / "docs" / "scenarios.md").read_text()
    for f in dataclasses.fields(OutcomeThresholds):
        default = f.default if f.metadata.get("unit") != "duration" else f"{f.default:g}s"
        assert f"| `{f.name}` |" in text and f"(default {default})" in text, f.name
