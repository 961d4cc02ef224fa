"""add_nodes: bring in nodes the topology built dark (`held_back: true`), e.g. the
dedicated mega-supernodes of the 2010 corrective push: links up, routes, services."""

from __future__ import annotations

from typing import Any

from testbed.scenario.actions.base import Action, RunContext, one_event


def add_nodes(ctx: RunContext, node: str, params: dict[str, Any]) -> str:
    ctx.runtime.links(node, up=True)
    started = ctx.runtime.start(node)
    ctx.exporter.node_up(node, restarted=False)
    return f"added, {started} services started"


ACTION = Action("add_nodes", one_event("add_nodes", {}), node_events={"add_nodes": add_nodes})
