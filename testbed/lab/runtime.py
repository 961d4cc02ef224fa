"""Acting on a running lab: what scenario steps (and `testbed reboot`) do to its nodes.

A reboot is a reboot: the node's processes die (SIGKILL, or SIGTERM first when graceful),
its data links go down for the down time, then come back with their routes, and its
services start again from its state directory (files there, such as the peer's host cache,
survive, as on a PC's disk). Link changes replace the qdiscs of a node's uplink and can be
reset to the topology's values; a partition drops everything but management traffic.

Every process started here is journaled like those of `up`, so `testbed down` still
removes exactly what exists. Methods are safe to call from several threads at once (a
restart wave acts on many hosts concurrently).
"""

from __future__ import annotations

import threading
from dataclasses import replace
from typing import Any

from testbed.backends.base import Backend
from testbed.errors import StepError
from testbed.lab.state import LabState
from testbed.links.change import LinkChange
from testbed.plan.model import NetworkPlan, PlannedNode, Shaping, VethEnd
from testbed.process.records import ProcessRecord
from testbed.process.supervisor import is_alive

GRACE_SECONDS = 3.0
PARTITION_TABLE = "testbed_partition"


class LabRuntime:
    """What can be done to a running lab's nodes, through its backend only."""

    def __init__(self, plan: NetworkPlan, state: LabState, backend: Backend) -> None:
        self.plan = plan
        self.state = state
        self.backend = backend
        self._lock = threading.Lock()
        self._processes: dict[str, list[ProcessRecord]] = {}
        for record in state.read().processes:
            if record.node:
                self._processes.setdefault(record.node, []).append(record)

    # --- nodes ----------------------------------------------------------------------
    def node(self, name: str) -> PlannedNode:
        try:
            node = self.plan.nodes[name]
        except KeyError:
            raise StepError(f"no node {name!r} in lab {self.plan.lab!r}") from None
        if not node.namespace:
            raise StepError(f"{name} is a {node.kind}: it has no processes or links of "
                                "its own to act on")
        return node

    def live_processes(self, name: str) -> list[ProcessRecord]:
        with self._lock:
            return [r for r in self._processes.get(name, []) if is_alive(r)]

    def kill(self, name: str, mode: str = "hard") -> int:
        """End the node's services; returns how many were running. `graceful` sends
        SIGTERM and waits a little before SIGKILL, `hard` is SIGKILL at once."""
        live = self.live_processes(self.node(name).name)
        self.backend.stop_processes(live, GRACE_SECONDS if mode == "graceful" else None)
        with self._lock:
            self._processes[name] = [r for r in self._processes.get(name, []) if is_alive(r)]
        return len(live)

    def start(self, name: str) -> int:
        """Start the node's services unless they run already; returns how many started."""
        node = self.node(name)
        if self.live_processes(name):
            return 0
        records = self.backend.start_services(node, self.plan, self.state)
        with self._lock:
            self._processes.setdefault(name, []).extend(records)
        return len(records)

    def links(self, name: str, up: bool) -> None:
        """Data links down (mgmt stays: it is the testbed's, not the node's) or up again
        with the node's routes (the kernel drops routes through a link that goes down)."""
        self.backend.set_links(self.node(name), up)

    def host_down(self, name: str, mode: str = "hard") -> int:
        self.node(name)
        self.state.mark_down(name)
        killed = self.kill(name, mode)
        self.links(name, up=False)
        return killed

    def host_up(self, name: str) -> int:
        self.links(name, up=True)
        started = self.start(name)
        self.state.clear_down(name)
        return started

    def reload(self, name: str) -> int:
        """Re-read the node's processes from the journal: another command (`testbed
        reboot`, run by a playbook) may have restarted them. Returns how many run."""
        records = [r for r in self.state.read().processes if r.node == name]
        with self._lock:
            self._processes[name] = records
        return len(self.live_processes(name))

    # --- link changes ---------------------------------------------------------------
    def uplink(self, name: str) -> tuple[VethEnd, VethEnd]:
        """(the node's end, the far end) of the node's uplink."""
        node = self.node(name)
        for veth in self.plan.veths:
            for mine, far in ((veth.a, veth.b), (veth.b, veth.a)):
                if mine.namespace == node.namespace and mine.name == node.uplink_interface:
                    return mine, far
        raise StepError(f"{name} has no uplink to change")

    def set_link(self, name: str, values: LinkChange) -> None:
        """Change the node's uplink: `bandwidth` (both ways), `up`, `down`, `loss`, `queue`,
        `delay` and `jitter` (each direction; these need sch_netem). `values` as parsed
        when the scenario was loaded (links/change.py)."""
        mine, far = self.uplink(name)
        both = values.bandwidth
        common = {"queue": values.queue, "delay": values.delay, "jitter": values.jitter}
        up = values.up if values.up is not None else both
        down = values.down if values.down is not None else both
        self._shape(mine, _changed(mine.shaping, rate=up, **common), far, values.loss)
        self._shape(far, _changed(far.shaping, rate=down, **common), mine, values.loss)

    def reset_link(self, name: str) -> None:
        """Back to the topology's shaping."""
        mine, far = self.uplink(name)
        self._shape(mine, mine.shaping, far, None)
        self._shape(far, far.shaping, mine, None)

    def _shape(self, end: VethEnd, shaping: Shaping, receiver: VethEnd,
               loss: float | None) -> None:
        self.backend.shape(end, shaping, receiver, loss)

    # --- partitions -----------------------------------------------------------------
    def partition(self, name: str) -> None:
        """Cut the node off: drop everything in, out and through, except management."""
        node = self.node(name)
        keep = f'iifname "{node.mgmt_interface}" accept' if node.mgmt_interface else ""
        keep_out = f'oifname "{node.mgmt_interface}" accept' if node.mgmt_interface else ""
        ruleset = (
            f"table inet {PARTITION_TABLE} {{\n"
            f"  chain in {{ type filter hook input priority -50; policy drop; {keep} }}\n"
            f"  chain out {{ type filter hook output priority -50; policy drop; {keep_out} }}\n"
            "  chain through { type filter hook forward priority -50; policy drop; }\n}\n")
        self.backend.apply_rules(node.namespace or "", ruleset, f"partitioning {name}")

    def heal(self, name: str) -> None:
        node = self.node(name)
        self.backend.remove_rules(node.namespace or "", "inet", PARTITION_TABLE)

    # --- the peer's control API -----------------------------------------------------
    @property
    def metrics_port(self) -> int:
        return self.plan.overlay.metrics_port if self.plan.overlay else 9100

    def control(self, name: str, path: str, timeout: float = 5.0) -> str:
        """GET a path of the node's peer control API, from the management namespace."""
        node = self.node(name)
        address = (node.mgmt_address or "").split("/")[0]
        result = self.backend.run(
            self.plan.mgmt_namespace,
            ["curl", "-sf", "-m", str(timeout), f"http://{address}:{self.metrics_port}{path}"],
            timeout=timeout + 5)
        if result.returncode != 0:
            raise StepError(f"{name}: control API {path} failed (curl exit "
                                f"{result.returncode}): is its peer running?")
        return result.stdout


def _changed(shaping: Shaping, **changes: Any) -> Shaping:
    """The shaping with the given fields replaced (None: left as it was)."""
    return replace(shaping, **{k: v for k, v in changes.items() if v is not None})

