"""Scenario actions, by name. Each turns a step into timed events (pure, seeded), so the
whole run's schedule is known, saved and reproducible before the lab is touched."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from testbed.links.change import check_link_change
from testbed.scenario.model import Distribution, StepSpec
from testbed.scenario.selectors import select
from testbed.scenario.traces import Trace, TraceError, read_trace
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


Scheduler = Callable[[StepSpec, int, float, Topology, random.Random], tuple[list[Event], float]]


def _targets(step: StepSpec, topology: Topology, rng: random.Random) -> tuple[str, ...]:
    if step.select is None:
        raise ActionError(f"{step.action} needs select: (which nodes)")
    names = select(step.select, topology.nodes.values(), rng)
    if not names:
        raise ActionError("select: matches no node of the topology")
    return tuple(names)


def restart_wave(step: StepSpec, index: int, start: float, topology: Topology,
                 rng: random.Random) -> tuple[list[Event], float]:
    """Hosts go down spread over `window` (or as a trace file's times) and come back after
    their down time."""
    events, end = [], start
    window = step.window or 0.0
    trace = _trace(step)
    for name in _targets(step, topology, rng):
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


def crash(step: StepSpec, index: int, start: float, topology: Topology,
          rng: random.Random) -> tuple[list[Event], float]:
    """SIGKILL the services at once (links stay up); optionally restarted later."""
    targets = _targets(step, topology, rng)
    events, end = [Event(start, "kill", targets, {}, index)], start
    if step.restart_after is not None:
        for name in targets:
            back = start + sample(step.restart_after, rng, 0.0)
            events.append(Event(back, "start", (name,), {}, index))
            end = max(end, back)
    return events, end


def _simple(name: str, needs_select: bool = True) -> Scheduler:
    def schedule(step: StepSpec, index: int, start: float, topology: Topology,
                 rng: random.Random) -> tuple[list[Event], float]:
        nodes = _targets(step, topology, rng) if needs_select else ()
        params = {k: v for k, v in (("link", step.link), ("policy", step.policy),
                                    ("query", step.query), ("timeout", step.timeout),
                                    ("text", step.text)) if v is not None}
        events = [Event(start, name, nodes, params, index)]
        end = start
        if step.duration is not None and name in ("set_link", "partition"):
            end = start + step.duration
            events.append(Event(end, "reset_link" if name == "set_link" else "heal",
                                nodes, {}, index))
        return events, end

    return schedule


def set_link(step: StepSpec, index: int, start: float, topology: Topology,
             rng: random.Random) -> tuple[list[Event], float]:
    """Reshape the selected nodes' uplinks; checked here, so a typo fails before the lab."""
    if not step.link:
        raise ActionError("set_link needs link: (e.g. {bandwidth: 256kbit, loss: 2%})")
    problems = check_link_change(step.link)
    if problems:
        raise ActionError("link: " + "; ".join(problems))
    return _simple("set_link")(step, index, start, topology, rng)


def run_playbook(step: StepSpec, index: int, start: float, topology: Topology,
                 rng: random.Random) -> tuple[list[Event], float]:
    """An Ansible playbook against the running lab (its generated inventory); `select:`
    limits it to the chosen hosts. It holds the timeline until it ends, like wait_until,
    so that `after:` counts from the end of the rollout."""
    if not step.playbook:
        raise ActionError("run_playbook needs playbook: (e.g. patch-tuesday.yml)")
    params: dict[str, Any] = {"playbook": step.playbook,
                              "extra_vars": dict(step.extra_vars or {})}
    if step.select is not None:
        params["limit"] = list(_targets(step, topology, rng))
    if step.timeout is not None:
        params["timeout"] = step.timeout
    return [Event(start, "run_playbook", (), params, index)], start


CALL_SECONDS = 10.0  # a call's length when the step gives no duration


def call(step: StepSpec, index: int, start: float, topology: Topology,
         rng: random.Random) -> tuple[list[Event], float]:
    """Each selected peer calls one peer of `to:` (chosen by the seed, never itself) for
    `duration`; the calls run side by side, and `after:` counts from their planned end."""
    callers = _targets(step, topology, rng)
    if step.to is None:
        raise ActionError("call needs to: (a selector: whom the selected peers call)")
    callees = select(step.to, topology.nodes.values(), rng)
    if not callees:
        raise ActionError("to: matches no node of the topology")
    kinds = {topology.nodes[name].kind for name in (*callers, *callees)}
    for name in (*callers, *callees):
        node = topology.nodes[name]
        if kinds == {"sip_ua"}:
            continue  # SIP user agents call each other through their registrar
        if node.kind != "peer" or node.command:
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
        if kinds == {"sip_ua"}:
            params["sip"] = True  # placed through the UA poller (testbed/sip/calls.py)
        events.append(Event(start, "call", (caller,), params, index))
    return events, start + seconds


ACTIONS: dict[str, Scheduler] = {
    "restart_wave": restart_wave,
    "crash": crash,
    "start": _simple("start"),
    "stop": _simple("stop"),
    "set_link": set_link,
    "partition": _simple("partition"),
    "heal": _simple("heal"),
    "add_nodes": _simple("add_nodes"),
    "set_policy": _simple("set_policy"),
    "wait_until": _simple("wait_until", needs_select=False),
    "run_playbook": run_playbook,
    "call": call,
    "mark": _simple("mark", needs_select=False),
}


def schedule(steps: list[StepSpec], topology: Topology, seed: int) -> list[Event]:
    """Every event of the run, in time order; the same seed gives the same schedule."""
    rng = random.Random(seed)
    events: list[Event] = []
    previous_end = 0.0
    for index, step in enumerate(steps):
        if step.action not in ACTIONS:
            raise ActionError(f"unknown action {step.action!r}; known: "
                              f"{', '.join(sorted(ACTIONS))}")
        start = step.at if step.at is not None else previous_end + (step.after or 0.0)
        made, previous_end = ACTIONS[step.action](step, index, start, topology, rng)
        events += made
    return sorted(events, key=lambda e: (e.time, e.step))
