"""start / stop: a node's services started (unless running) or stopped gracefully
(SIGTERM, then SIGKILL after a grace period); links are not touched."""

from __future__ import annotations

from typing import Any

from testbed.scenario.actions.base import Action, RunContext, one_event


def start(ctx: RunContext, node: str, params: dict[str, Any]) -> str:
    started = ctx.runtime.start(node)
    ctx.exporter.node_up(node)
    return f"{started} services started"


def stop(ctx: RunContext, node: str, params: dict[str, Any]) -> str:
    stopped = ctx.runtime.kill(node, "graceful")
    ctx.exporter.node_down(node)
    return f"{stopped} processes stopped"


START = Action("start", one_event("start", {}), node_events={"start": start})
STOP = Action("stop", one_event("stop", {}), node_events={"stop": stop})
