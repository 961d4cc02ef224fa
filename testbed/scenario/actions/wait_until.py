"""wait_until: hold the rest of the timeline back until a PromQL condition holds (a
non-zero sample) or its timeout passes."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from testbed.errors import LabError, StepError
from testbed.scenario.actions.base import Action, RunContext, one_event


def wait_until(ctx: RunContext, params: dict[str, Any],
               clock: Callable[[], float] = time.monotonic,
               sleep: Callable[[float], None] = time.sleep) -> str:
    if ctx.prometheus is None:
        raise StepError("wait_until needs the run's Prometheus, which is not running")
    query, timeout = str(params["query"]), float(params.get("timeout") or 300.0)
    began = clock()
    unanswered, last_error = 0, ""
    while True:
        try:
            value = ctx.prometheus.scalar(query)
        except LabError as exc:
            # a Prometheus slow to answer (a loaded machine, a large lab) is no answer
            # yet: the step's own timeout decides, not one query's
            value, unanswered, last_error = None, unanswered + 1, str(exc)
        if value:
            return f"held after {clock() - began:.1f}s (value {value:g})"
        if clock() - began >= timeout:
            note = (f"; {unanswered} queries unanswered, the last: {last_error}"
                    if unanswered else "")
            return f"timed out after {timeout:g}s{note}"
        sleep(1.0)


ACTION = Action("wait_until", one_event("wait_until", {"query": "query", "timeout": "timeout"},
                                        needs_select=False),
                timeline_events={"wait_until": wait_until}, holding=frozenset({"wait_until"}))
