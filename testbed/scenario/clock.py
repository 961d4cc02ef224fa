"""`clock: real` in a scenario: its times are real-network seconds, converted to the lab's
clock with the topology's overlay.time_scale (testbed/peer/clock.py), so a scenario
describes the real outage and runs unchanged at any time scale.

Every duration of the timeline scales: `at`, `after`, `window`, `down_time`,
`restart_after`, a step's `duration`, the scenario's `duration`, and `outcome:`'s
`judge_after` and `settle`. Timeouts (`wait_until`, `run_playbook`) do not: they bound
how long the lab may take, not what happens in the emulated network. Pure.
"""

from __future__ import annotations

import dataclasses

from testbed.scenario.model import Distribution, ScenarioFile, StepSpec

STEP_TIMES = ("at", "after", "window", "duration")
DISTRIBUTIONS = ("down_time", "restart_after")


def _times(value: float | None, scale: float) -> float | None:
    return None if value is None else value * scale


def _distribution(dist: Distribution | None, scale: float) -> Distribution | None:
    if dist is None:
        return None
    return dataclasses.replace(dist, value=_times(dist.value, scale),
                               min=_times(dist.min, scale), max=_times(dist.max, scale),
                               mean=_times(dist.mean, scale),
                               stddev=_times(dist.stddev, scale))


def step_on_lab_clock(step: StepSpec, scale: float) -> StepSpec:
    changes: dict[str, object] = {k: _times(getattr(step, k), scale) for k in STEP_TIMES}
    changes.update({k: _distribution(getattr(step, k), scale) for k in DISTRIBUTIONS})
    return dataclasses.replace(step, **changes)  # type: ignore[arg-type]


def on_lab_clock(spec: ScenarioFile, scale: float) -> ScenarioFile:
    """The scenario with real-second times converted (a `clock: lab` one unchanged)."""
    if spec.clock != "real" or scale == 1:
        return spec
    outcome = spec.outcome and dataclasses.replace(
        spec.outcome, judge_after=spec.outcome.judge_after * scale,
        settle=spec.outcome.settle * scale)
    return dataclasses.replace(
        spec, duration=_times(spec.duration, scale), outcome=outcome,
        steps=[step_on_lab_clock(s, scale) for s in spec.steps or []])
