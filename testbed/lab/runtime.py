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

import signal
import subprocess
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from testbed.backends.netns import NetnsBackend
from testbed.errors import StepError
from testbed.lab.state import LabState, ProcessRecord
from testbed.links.change import parse_link_change
from testbed.links.shaping import nft_loss_table, tc_lines
from testbed.plan.model import NetworkPlan, PlannedNode, Shaping, VethEnd
from testbed.process import commands
from testbed.process.supervisor import is_alive, signal_group, stop
from testbed.units import UnitError

GRACE_SECONDS = 3.0
PARTITION_TABLE = "testbed_partition"
LOSS_TABLE = "testbed_loss_runtime"


class LabRuntime:
    def __init__(self, plan: NetworkPlan, state: LabState, backend: NetnsBackend) -> None:
        self.plan = plan
        self.state = state
        self.backend = backend
        self._lock = threading.Lock()
        self._processes: dict[str, list[ProcessRecord]] = {}
        for record in state.read().processes:
            if record.node:
                self._processes.setdefault(record.node, []).append(record)

    @classmethod
    def attach(cls, state: LabState) -> LabRuntime:
        """For a lab built by another command (`testbed up`): the plan is rebuilt from the
        lab's copy of its topology and parameters (plans are deterministic)."""
        from testbed.plan.build import build_plan
        from testbed.topology.loader import load_topology

        summary = state.summary()
        copy = state.dir / "topology.yaml"
        source = copy if copy.exists() else Path(summary["source"])
        params = {k: str(v).lower() if isinstance(v, bool) else str(v)
                  for k, v in (summary.get("params") or {}).items()}
        plan = build_plan(load_topology(source, params))
        return cls(plan, state, NetnsBackend())

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
        if mode == "graceful":
            stop(live, grace=GRACE_SECONDS, supervisor=self.backend.supervisor)
        else:
            for record in live:
                signal_group(record, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and any(is_alive(r) for r in live):
            self.backend.supervisor.reap()
            time.sleep(0.01)
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
        node = self.node(name)
        state = "up" if up else "down"
        lines = [f"link set dev {i.name} {state}" for i in node.interfaces]
        if up:
            lines += [f"route replace {r.destination} via {r.via}" for r in node.routes]
        commands.batch("ip", lines, namespace=node.namespace or "",
                       context=f"{name}: links {state}")

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

    def set_link(self, name: str, change: dict[str, Any]) -> None:
        """Change the node's uplink: `bandwidth` (both ways), `up`, `down`, `loss`, `queue`,
        `delay` and `jitter` (each direction; these need sch_netem)."""
        try:
            values = parse_link_change(change)
        except UnitError as exc:
            raise StepError(f"set_link: {exc}") from None
        mine, far = self.uplink(name)
        both = values.get("bandwidth")
        common = {"queue": values.get("queue"), "delay": values.get("delay"),
                  "jitter": values.get("jitter")}
        loss = values.get("loss")
        self._shape(mine, _changed(mine.shaping, rate=values.get("up", both), **common),
                    far, loss)
        self._shape(far, _changed(far.shaping, rate=values.get("down", both), **common),
                    mine, loss)

    def reset_link(self, name: str) -> None:
        """Back to the topology's shaping."""
        mine, far = self.uplink(name)
        self._shape(mine, mine.shaping, far, None)
        self._shape(far, far.shaping, mine, None)

    def _shape(self, end: VethEnd, shaping: Shaping, receiver: VethEnd,
               loss: float | None) -> None:
        netem = self.backend.have_netem()
        commands.run(["ip", "netns", "exec", end.namespace, "tc", "qdisc", "del", "dev",
                      end.name, "root"], check=False, context="clearing qdiscs")
        commands.batch("tc", tc_lines(end.name, shaping, netem), namespace=end.namespace,
                       context=f"shaping {end.name}")
        # extra loss is dropped where the far end receives, in a table of its own
        table = f"{LOSS_TABLE}_{_safe(receiver.name)}"
        commands.run(["ip", "netns", "exec", receiver.namespace, "nft", "delete", "table",
                      "netdev", table], check=False, context="clearing runtime loss")
        if loss:
            ruleset = nft_loss_table({receiver.name: loss}).replace(
                "table netdev testbed_loss", f"table netdev {table}", 1)
            commands.run(["ip", "netns", "exec", receiver.namespace, "nft", "-f", "-"],
                         stdin=ruleset, context=f"loss on {receiver.name}")

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
        commands.run(["ip", "netns", "exec", node.namespace or "", "nft", "-f", "-"],
                     stdin=ruleset, context=f"partitioning {name}")

    def heal(self, name: str) -> None:
        node = self.node(name)
        commands.run(["ip", "netns", "exec", node.namespace or "", "nft", "delete", "table",
                      "inet", PARTITION_TABLE], check=False, context=f"healing {name}")

    # --- the peer's control API -----------------------------------------------------
    @property
    def metrics_port(self) -> int:
        return self.plan.overlay.metrics_port if self.plan.overlay else 9100

    def control(self, name: str, path: str, timeout: float = 5.0) -> str:
        """GET a path of the node's peer control API, from the management namespace."""
        node = self.node(name)
        address = (node.mgmt_address or "").split("/")[0]
        result = subprocess.run(
            ["ip", "netns", "exec", self.plan.mgmt_namespace, "curl", "-sf", "-m",
             str(timeout), f"http://{address}:{self.metrics_port}{path}"],
            capture_output=True, text=True, timeout=timeout + 5, check=False)
        if result.returncode != 0:
            raise StepError(f"{name}: control API {path} failed (curl exit "
                                f"{result.returncode}): is its peer running?")
        return result.stdout


def _changed(shaping: Shaping, **changes: Any) -> Shaping:
    """The shaping with the given fields replaced (None: left as it was)."""
    return replace(shaping, **{k: v for k, v in changes.items() if v is not None})


def _safe(device: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in device)

