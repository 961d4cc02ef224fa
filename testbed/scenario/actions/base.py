"""What every scenario action is made of: a scheduling half (a step -> timed events,
pure and seeded, so the whole run's schedule is known, saved and reproducible before the
lab is touched) and an executing half (what each event does to the running lab).

Each action lives in its own module of this package with both halves, and is listed in
registry.py. Node events run once per target node (the engine runs them concurrently);
timeline events (`mark`, `wait_until`, `run_playbook`) run on the engine's own thread.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from testbed.lab.runtime import LabRuntime
from testbed.scenario.model import Distribution, StepSpec
from testbed.scenario.selectors import select
from testbed.topology.model import Topology


@dataclass(frozen=True)
class Event:
    """One thing the engine does at `time` (seconds from the run's start)."""

    time: float
    action: str
    nodes: tuple[str, ...] = ()
    params: dict[str, Any] = field(default_factory=dict)
    step: int = 0


class ActionError(ValueError):
    """A step that cannot be scheduled; the message says what to change."""


class Queryable(Protocol):
    def scalar(self, promql: str) -> float | None: ...


class Exporter(Protocol):
    """The testbed exporter, as steps tell it what they did to nodes."""

    def node_down(self, node: str) -> None: ...

    def node_up(self, node: str, restarted: bool = True) -> None: ...

    def event(self, action: str, step: int) -> None: ...


@dataclass
class RunContext:
    """What steps act on: the lab, the testbed exporter, and Prometheus (for conditions).
    The engine fills in `note` (an extra step-log line for the current step) and
    `cancelled` (true once the run is being stopped)."""

    runtime: LabRuntime
    exporter: Exporter
    prometheus: Queryable | None = None
    work_dir: Path | None = None  # where steps keep their files (the run's directory)
    note: Callable[[dict[str, Any]], None] = field(default=lambda entry: None)
    cancelled: Callable[[], bool] = field(default=lambda: False)


Scheduler = Callable[[StepSpec, int, float, Topology, random.Random],
                     tuple[list[Event], float]]
NodeExecutor = Callable[[RunContext, str, dict[str, Any]], str]
TimelineExecutor = Callable[[RunContext, dict[str, Any]], str]


@dataclass(frozen=True)
class Action:
    """A scenario step's action: how it is scheduled, and what its events do.

    `node_events`/`timeline_events` map the event names the scheduler emits to their
    executors (a restart wave emits host_down and host_up). `lasting` node events get
    their own threads (a call lasts); `holding` timeline events hold the rest of the
    timeline back while they run."""

    name: str
    schedule: Scheduler
    node_events: Mapping[str, NodeExecutor] = field(default_factory=dict)
    timeline_events: Mapping[str, TimelineExecutor] = field(default_factory=dict)
    lasting: frozenset[str] = frozenset()
    holding: frozenset[str] = frozenset()


def sample(dist: Distribution | None, rng: random.Random, default: float) -> float:
    if dist is None:
        return default
    if dist.kind == "fixed":
        return dist.value if dist.value is not None else default
    if dist.kind == "uniform":
        low, high = dist.min or 0.0, dist.max if dist.max is not None else default
        return rng.uniform(low, high)
    mean, sd = dist.mean if dist.mean is not None else default, dist.stddev or 0.0
    return max(0.0, rng.gauss(mean, sd))


def targets(step: StepSpec, topology: Topology, rng: random.Random) -> tuple[str, ...]:
    """The nodes a step's `select:` picks (by the seed)."""
    if step.select is None:
        raise ActionError(f"{step.action} needs select: (which nodes)")
    names = select(step.select, topology.nodes.values(), rng)
    if not names:
        raise ActionError("select: matches no node of the topology")
    return tuple(names)


def one_event(name: str, params: dict[str, Any], needs_select: bool = True,
              undo: str | None = None) -> Scheduler:
    """A scheduler for actions that are one event at the step's time (on the selected
    nodes, or on the timeline), plus, with `undo` and a step `duration`, the event that
    reverts it at the end of that duration."""

    def schedule_one(step: StepSpec, index: int, start: float, topology: Topology,
                     rng: random.Random) -> tuple[list[Event], float]:
        nodes = targets(step, topology, rng) if needs_select else ()
        events = [Event(start, name, nodes, params_of(step, params), index)]
        end = start
        if undo is not None and step.duration is not None:
            end = start + step.duration
            events.append(Event(end, undo, nodes, {}, index))
        return events, end

    return schedule_one


def params_of(step: StepSpec, fields: dict[str, Any]) -> dict[str, Any]:
    """The event's parameters: the named step fields that are set."""
    return {key: getattr(step, attr) for key, attr in fields.items()
            if getattr(step, attr) is not None}
