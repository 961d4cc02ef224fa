"""set_policy: swap the selected reference peers' retry policy at run time, through the
peer's control API (`/policy?name=`)."""

from __future__ import annotations

from typing import Any

from testbed.scenario.actions.base import Action, RunContext, one_event


def set_policy(ctx: RunContext, node: str, params: dict[str, Any]) -> str:
    ctx.runtime.control(node, f"/policy?name={params['policy']}")
    return f"policy {params['policy']}"


ACTION = Action("set_policy", one_event("set_policy", {"policy": "policy"}),
                node_events={"set_policy": set_policy})
