"""set_link: reshape the selected nodes' uplinks (bandwidth, up, down, loss, queue,
delay, jitter) at run time; with `duration`, reset to the topology's values after it.
The change is parsed once, when the scenario is loaded: a typo fails before any lab
exists, and the event carries the parsed values to the lab."""

from __future__ import annotations

import random
from typing import Any

from testbed.links.change import LinkChange, check_link_change, parse_link_change
from testbed.scenario.actions.base import Action, ActionError, Event, RunContext, one_event
from testbed.scenario.model import StepSpec
from testbed.topology.model import Topology


def schedule(step: StepSpec, index: int, start: float, topology: Topology,
             rng: random.Random) -> tuple[list[Event], float]:
    if not step.link:
        raise ActionError("set_link needs link: (e.g. {bandwidth: 256kbit, loss: 2%})")
    problems = check_link_change(step.link)
    if problems:
        raise ActionError("link: " + "; ".join(problems))
    events, end = one_event("set_link", {"link": "link"}, undo="reset_link")(
        step, index, start, topology, rng)
    change = parse_link_change(step.link)
    return [Event(e.time, e.action, e.nodes, {**e.params, "change": change}, e.step)
            if e.action == "set_link" else e for e in events], end


def set_link(ctx: RunContext, node: str, params: dict[str, Any]) -> str:
    change = params["change"]
    if not isinstance(change, LinkChange):  # an event read back from schedule.json
        change = LinkChange(**change)
    ctx.runtime.set_link(node, change)
    return "uplink " + ", ".join(f"{k}={v}" for k, v in (params.get("link") or {}).items())


def reset_link(ctx: RunContext, node: str, params: dict[str, Any]) -> str:
    ctx.runtime.reset_link(node)
    return "uplink back to the topology's shaping"


ACTION = Action("set_link", schedule,
                node_events={"set_link": set_link, "reset_link": reset_link})
