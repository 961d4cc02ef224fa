"""mark: a labelled moment on the timeline (shown in the step log and the report)."""

from __future__ import annotations

from typing import Any

from testbed.scenario.actions.base import Action, RunContext, one_event


def mark(ctx: RunContext, params: dict[str, Any]) -> str:
    return str(params.get("text", ""))


ACTION = Action("mark", one_event("mark", {"text": "text"}, needs_select=False),
                timeline_events={"mark": mark})
