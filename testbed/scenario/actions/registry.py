"""Every scenario action by name, and the schedule of a whole scenario. Adding an action
is one module in this package and one line here."""

from __future__ import annotations

import random
from collections.abc import Iterable

from testbed.scenario.actions import (
    add_nodes,
    call,
    crash,
    mark,
    partition,
    restart_wave,
    run_playbook,
    set_link,
    set_policy,
    start_stop,
    wait_until,
)
from testbed.scenario.actions.base import (
    Action,
    ActionError,
    Event,
    NodeExecutor,
    Scheduler,
    TimelineExecutor,
)
from testbed.scenario.model import StepSpec
from testbed.topology.model import Topology


class ActionRegistry:
    """Scenario actions by step name, and their events' executors by event name."""

    def __init__(self, actions: Iterable[Action]) -> None:
        self.actions = {a.name: a for a in actions}
        self.node_events: dict[str, NodeExecutor] = {}
        self.timeline_events: dict[str, TimelineExecutor] = {}
        lasting: set[str] = set()
        holding: set[str] = set()
        for action in self.actions.values():
            for event, node_executor in action.node_events.items():
                if self.node_events.setdefault(event, node_executor) is not node_executor:
                    raise ValueError(f"event {event!r} has two executors")
            for event, executor in action.timeline_events.items():
                if self.timeline_events.setdefault(event, executor) is not executor:
                    raise ValueError(f"event {event!r} has two executors")
            lasting |= action.lasting
            holding |= action.holding
        self.lasting = frozenset(lasting)
        self.holding = frozenset(holding)

    @property
    def schedulers(self) -> dict[str, Scheduler]:
        return {name: a.schedule for name, a in self.actions.items()}

    def schedule(self, steps: list[StepSpec], topology: Topology, seed: int) -> list[Event]:
        """Every event of the run, in time order; the same seed gives the same schedule."""
        rng = random.Random(seed)
        events: list[Event] = []
        previous_end = 0.0
        for index, step in enumerate(steps):
            action = self.actions.get(step.action or "")
            if action is None:
                raise ActionError(f"unknown action {step.action!r}; known: "
                                  f"{', '.join(sorted(self.actions))}")
            start = step.at if step.at is not None else previous_end + (step.after or 0.0)
            made, previous_end = action.schedule(step, index, start, topology, rng)
            events += made
        return sorted(events, key=lambda e: (e.time, e.step))


def default_actions() -> ActionRegistry:
    return ActionRegistry([
        restart_wave.ACTION, crash.ACTION, start_stop.START, start_stop.STOP,
        set_link.ACTION, partition.PARTITION, partition.HEAL, add_nodes.ACTION,
        set_policy.ACTION, wait_until.ACTION, run_playbook.ACTION, call.ACTION, mark.ACTION,
    ])


def schedule(steps: list[StepSpec], topology: Topology, seed: int) -> list[Event]:
    return default_actions().schedule(steps, topology, seed)
