"""What each scheduled event does to the running lab, by action name.

Node actions run once per target node (the engine runs them concurrently); timeline
actions (`mark`, `wait_until`, `run_playbook`) run on the engine's own thread, and
`wait_until` and `run_playbook` hold the rest of the timeline back until their condition
holds (or times out) or the playbook ends.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from testbed.errors import StepError
from testbed.lab.runtime import LabRuntime
from testbed.metrics.exporter import TestbedExporter


class Queryable(Protocol):
    def scalar(self, promql: str) -> float | None: ...


@dataclass
class RunContext:
    """What steps act on: the lab, the testbed exporter, and Prometheus (for conditions).
    The engine fills in `note` (an extra step-log line for the current step) and
    `cancelled` (true once the run is being stopped)."""

    runtime: LabRuntime
    exporter: TestbedExporter
    prometheus: Queryable | None = None
    work_dir: Path | None = None  # where steps keep their files (the run's directory)
    note: Callable[[dict[str, Any]], None] = field(default=lambda entry: None)
    cancelled: Callable[[], bool] = field(default=lambda: False)


NodeAction = Callable[[RunContext, str, dict[str, Any]], str]
TimelineAction = Callable[[RunContext, dict[str, Any]], str]


def host_down(ctx: RunContext, node: str, params: dict[str, Any]) -> str:
    ctx.exporter.node_down(node)
    killed = ctx.runtime.host_down(node, str(params.get("mode", "hard")))
    return f"{killed} processes killed, links down"


def host_up(ctx: RunContext, node: str, params: dict[str, Any]) -> str:
    started = ctx.runtime.host_up(node)
    ctx.exporter.node_up(node)
    return f"links up, {started} services started"


def kill(ctx: RunContext, node: str, params: dict[str, Any]) -> str:
    killed = ctx.runtime.kill(node, "hard")
    ctx.exporter.node_down(node)
    return f"{killed} processes killed (SIGKILL)"


def stop(ctx: RunContext, node: str, params: dict[str, Any]) -> str:
    stopped = ctx.runtime.kill(node, "graceful")
    ctx.exporter.node_down(node)
    return f"{stopped} processes stopped"


def start(ctx: RunContext, node: str, params: dict[str, Any]) -> str:
    started = ctx.runtime.start(node)
    ctx.exporter.node_up(node)
    return f"{started} services started"


def set_link(ctx: RunContext, node: str, params: dict[str, Any]) -> str:
    change = params.get("link") or {}
    ctx.runtime.set_link(node, change)
    return "uplink " + ", ".join(f"{k}={v}" for k, v in change.items())


def reset_link(ctx: RunContext, node: str, params: dict[str, Any]) -> str:
    ctx.runtime.reset_link(node)
    return "uplink back to the topology's shaping"


def partition(ctx: RunContext, node: str, params: dict[str, Any]) -> str:
    ctx.runtime.partition(node)
    return "cut off (management kept)"


def heal(ctx: RunContext, node: str, params: dict[str, Any]) -> str:
    ctx.runtime.heal(node)
    return "reconnected"


def add_nodes(ctx: RunContext, node: str, params: dict[str, Any]) -> str:
    """Bring in a node held back at `up` (e.g. a dedicated supernode, the corrective push)."""
    ctx.runtime.links(node, up=True)
    started = ctx.runtime.start(node)
    ctx.exporter.node_up(node, restarted=False)
    return f"added, {started} services started"


def set_policy(ctx: RunContext, node: str, params: dict[str, Any]) -> str:
    ctx.runtime.control(node, f"/policy?name={params['policy']}")
    return f"policy {params['policy']}"


CALL_SETUP_SECONDS = 30.0  # lookup, signalling and relay set-up on top of the call itself


def call(ctx: RunContext, node: str, params: dict[str, Any]) -> str:
    """Place a call through the peer's control API; returns once the call has ended."""
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


def mark(ctx: RunContext, params: dict[str, Any]) -> str:
    return str(params.get("text", ""))


def wait_until(ctx: RunContext, params: dict[str, Any],
               clock: Callable[[], float] = time.monotonic,
               sleep: Callable[[float], None] = time.sleep) -> str:
    """Poll a PromQL condition (true when it returns a non-zero sample)."""
    if ctx.prometheus is None:
        raise StepError("wait_until needs the run's Prometheus, which is not running")
    query, timeout = str(params["query"]), float(params.get("timeout") or 300.0)
    began = clock()
    while True:
        value = ctx.prometheus.scalar(query)
        if value:
            return f"held after {clock() - began:.1f}s (value {value:g})"
        if clock() - began >= timeout:
            return f"timed out after {timeout:g}s"
        sleep(1.0)


def run_playbook(ctx: RunContext, params: dict[str, Any]) -> str:
    from testbed.scenario.playbook_step import run_playbook as run

    base = ctx.work_dir or ctx.runtime.state.dir
    done = len(list((base / "ansible").glob("*"))) if (base / "ansible").is_dir() else 0
    work = base / "ansible" / f"{done + 1:02d}-{Path(str(params['playbook'])).stem}"
    return run(params, ctx.runtime.state.dir, ctx.runtime.state.root, work, ctx.note,
               ctx.cancelled)


NODE_ACTIONS: dict[str, NodeAction] = {
    "host_down": host_down, "host_up": host_up, "kill": kill, "stop": stop, "start": start,
    "set_link": set_link, "reset_link": reset_link, "partition": partition, "heal": heal,
    "add_nodes": add_nodes, "set_policy": set_policy, "call": call,
}
# Node actions that last (a call): they get their own threads, so that hundreds of calls
# in progress never hold back the restarts scheduled meanwhile.
LASTING_ACTIONS = frozenset({"call"})
TIMELINE_ACTIONS: dict[str, TimelineAction] = {"mark": mark, "wait_until": wait_until,
                                               "run_playbook": run_playbook}
# Timeline actions that hold the rest of the timeline back for as long as they take.
HOLDING_ACTIONS = frozenset({"wait_until", "run_playbook"})
