"""restart_wave: a share of the selected hosts reboot over a window (spread uniformly,
front-loaded, or shaped by a trace of recorded restart times); each comes back after a
sampled down time. A reboot kills the node's processes and takes its data links down;
coming back brings links, routes and services back from its state directory."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from testbed.scenario.actions.base import (
    Action,
    ActionError,
    Event,
    RunContext,
    sample,
    targets,
)
from testbed.scenario.model import StepSpec
from testbed.scenario.traces import Trace, TraceError, read_trace
from testbed.topology.model import Topology


def schedule(step: StepSpec, index: int, start: float, topology: Topology,
             rng: random.Random) -> tuple[list[Event], float]:
    events, end = [], start
    window = step.window or 0.0
    trace = _trace(step)
    for name in targets(step, topology, rng):
        if trace is not None:
            offset = trace.offset(step.window, rng)
        else:
            u = rng.random()
            offset = window * (u * u if step.spread == "front-loaded" else u)
        down = start + offset
        up = down + sample(step.down_time, rng, 60.0)
        events += [Event(down, "host_down", (name,), {"mode": step.mode or "hard"}, index),
                   Event(up, "host_up", (name,), {}, index)]
        end = max(end, up)
    return events, end


def _trace(step: StepSpec) -> Trace | None:
    if step.trace is None:
        return None
    if step.spread is not None:
        raise ActionError("restart_wave: give spread: or trace:, not both (a trace is the "
                          "spread)")
    try:
        return read_trace(Path(step.trace))
    except TraceError as exc:
        raise ActionError(str(exc)) from None


def host_down(ctx: RunContext, node: str, params: dict[str, Any]) -> str:
    ctx.exporter.node_down(node)
    killed = ctx.runtime.host_down(node, str(params.get("mode", "hard")))
    return f"{killed} processes killed, links down"


def host_up(ctx: RunContext, node: str, params: dict[str, Any]) -> str:
    started = ctx.runtime.host_up(node)
    ctx.exporter.node_up(node)
    return f"links up, {started} services started"


ACTION = Action("restart_wave", schedule,
                node_events={"host_down": host_down, "host_up": host_up})
