"""call: each selected peer calls one peer of `to:` (chosen by the seed, never itself) for
`duration`, through the peer's control API; the step log says whether the media went
direct or through a relay. Calls get their own threads, so that hundreds of calls in
progress never hold back the restarts scheduled meanwhile."""

from __future__ import annotations

import json
import random
from typing import Any

from testbed.errors import StepError
from testbed.scenario.actions.base import Action, ActionError, Event, RunContext, targets
from testbed.scenario.model import StepSpec
from testbed.scenario.selectors import select
from testbed.topology.model import Topology

CALL_SECONDS = 10.0  # a call's length when the step gives no duration
CALL_SETUP_SECONDS = 30.0  # lookup, signalling and relay set-up on top of the call itself


def schedule(step: StepSpec, index: int, start: float, topology: Topology,
             rng: random.Random) -> tuple[list[Event], float]:
    """The calls run side by side; `after:` counts from their planned end."""
    callers = targets(step, topology, rng)
    if step.to is None:
        raise ActionError("call needs to: (a selector: whom the selected peers call)")
    callees = select(step.to, topology.nodes.values(), rng)
    if not callees:
        raise ActionError("to: matches no node of the topology")
    kinds = {topology.nodes[name].kind for name in (*callers, *callees)}
    sip = kinds == {"sip_ua"}  # SIP user agents call each other through their registrar
    for name in (*callers, *callees):
        node = topology.nodes[name]
        if not sip and (node.kind != "peer" or node.command):
            raise ActionError(f"call: {name} is not a reference overlay peer (kind "
                              f"{node.kind}{', own command' if node.command else ''}); only "
                              "peers running the overlay, or SIP user agents (sip_ua) "
                              "among themselves, place and answer calls")
    seconds = step.duration if step.duration is not None else CALL_SECONDS
    events = []
    for caller in callers:
        others = [name for name in callees if name != caller]
        if not others:
            raise ActionError(f"call: to: offers {caller} nobody to call but itself")
        params: dict[str, Any] = {"to": rng.choice(others), "seconds": seconds}
        if sip:
            params["sip"] = True  # placed through the UA poller (testbed/sip/calls.py)
        events.append(Event(start, "call", (caller,), params, index))
    return events, start + seconds


def call(ctx: RunContext, node: str, params: dict[str, Any]) -> str:
    """Place the call; returns once it has ended."""
    callee, seconds = str(params["to"]), float(params["seconds"])
    if params.get("sip"):
        from testbed.sip.calls import sip_call

        return sip_call(ctx.runtime.plan, node, callee, seconds, CALL_SETUP_SECONDS)
    reply = ctx.runtime.control(node, f"/call?to={callee}&seconds={seconds:g}",
                                timeout=seconds + CALL_SETUP_SECONDS)
    try:
        result = json.loads(reply)
    except ValueError:
        raise StepError(f"{node}: the control API answered /call with {reply[:80]!r}") from None
    if result.get("ok"):
        return (f"{result.get('path')} call to {callee}: {result.get('received')} media "
                f"packets received, {result.get('sent')} sent")
    return f"call to {callee} failed: {result.get('reason', 'no media got through')}"


ACTION = Action("call", schedule, node_events={"call": call}, lasting=frozenset({"call"}))
