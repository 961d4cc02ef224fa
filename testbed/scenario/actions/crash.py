"""crash: SIGKILL the selected nodes' services at once (links stay up, as when a program
crashes); with `restart_after`, each is started again after a sampled delay."""

from __future__ import annotations

import random
from typing import Any

from testbed.scenario.actions.base import Action, Event, RunContext, sample, targets
from testbed.scenario.actions.start_stop import start
from testbed.scenario.model import StepSpec
from testbed.topology.model import Topology


def schedule(step: StepSpec, index: int, start_at: float, topology: Topology,
             rng: random.Random) -> tuple[list[Event], float]:
    chosen = targets(step, topology, rng)
    events, end = [Event(start_at, "kill", chosen, {}, index)], start_at
    if step.restart_after is not None:
        for name in chosen:
            back = start_at + sample(step.restart_after, rng, 0.0)
            events.append(Event(back, "start", (name,), {}, index))
            end = max(end, back)
    return events, end


def kill(ctx: RunContext, node: str, params: dict[str, Any]) -> str:
    killed = ctx.runtime.kill(node, "hard")
    ctx.exporter.node_down(node)
    return f"{killed} processes killed (SIGKILL)"


ACTION = Action("crash", schedule, node_events={"kill": kill, "start": start})
