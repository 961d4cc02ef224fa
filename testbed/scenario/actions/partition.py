"""partition / heal: cut the selected nodes off (everything in, out and through dropped,
management kept) and reconnect them; a partition with `duration` heals by itself."""

from __future__ import annotations

from typing import Any

from testbed.scenario.actions.base import Action, RunContext, one_event


def partition(ctx: RunContext, node: str, params: dict[str, Any]) -> str:
    ctx.runtime.partition(node)
    return "cut off (management kept)"


def heal(ctx: RunContext, node: str, params: dict[str, Any]) -> str:
    ctx.runtime.heal(node)
    return "reconnected"


PARTITION = Action("partition", one_event("partition", {}, undo="heal"),
                   node_events={"partition": partition, "heal": heal})
HEAL = Action("heal", one_event("heal", {}), node_events={"heal": heal})
