"""wait_until keeps asking while Prometheus is slow: only the step's timeout ends it."""

from __future__ import annotations

from typing import Any, cast

from testbed.errors import LabError
from testbed.scenario.actions.base import RunContext
from testbed.scenario.actions.wait_until import wait_until


class SlowPrometheus:
    """Times out `failures` times, then answers each query from `answers`."""

    def __init__(self, failures: int, answers: list[float | None]) -> None:
        self.failures, self.answers, self.asked = failures, answers, 0

    def scalar(self, promql: str) -> float | None:
        self.asked += 1
        if self.failures:
            self.failures -= 1
            raise LabError("Prometheus did not answer /api/v1/query: timed out")
        return self.answers.pop(0) if self.answers else None


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def context(prometheus: SlowPrometheus) -> RunContext:
    ctx: Any = type("Ctx", (), {})()
    ctx.prometheus = prometheus
    return cast(RunContext, ctx)


def test_an_unanswered_query_is_asked_again_until_the_condition_holds() -> None:
    prometheus, clock = SlowPrometheus(failures=3, answers=[0.0, 1.0]), Clock()
    outcome = wait_until(context(prometheus), {"query": "up", "timeout": 60},
                         clock=clock, sleep=clock.sleep)
    assert outcome.startswith("held after 4.0s") and prometheus.asked == 5


def test_a_prometheus_that_never_answers_times_the_step_out_and_says_why() -> None:
    prometheus, clock = SlowPrometheus(failures=1000, answers=[]), Clock()
    outcome = wait_until(context(prometheus), {"query": "up", "timeout": 10},
                         clock=clock, sleep=clock.sleep)
    assert outcome.startswith("timed out after 10s; 11 queries unanswered")
    assert "timed out" in outcome.split("the last: ")[1]
