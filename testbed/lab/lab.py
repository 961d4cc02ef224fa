"""The Lab: the one front door to a lab. Everything that builds a lab, attaches to one,
changes one or removes one goes through it: the CLI verbs, the scenario run, the pytest
plugin, the Python API (`from testbed import Lab`).

    with Lab.up("topologies/skype-2007.yaml", homes=4) as lab:
        print(lab["home001"].cmd("ping -c1", lab["login"].ip))

A Lab holds running state (its state directory, its backend); the topology and the plan
it was built from are pure data. `Lab.attach(name)` finds a lab built by another command
(`testbed up`): its plan is rebuilt lazily from the lab's copy of its topology, so a lab
whose build was killed half-way can still be taken down from its journal alone.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterator, Mapping
from functools import cached_property
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, runtime_checkable

from testbed.backends.base import Backend
from testbed.errors import LabError
from testbed.lab.node import LabNode
from testbed.lab.runtime import LabRuntime
from testbed.lab.state import LabState, find_lab, state_root
from testbed.plan.model import NetworkPlan, VethEnd
from testbed.progress import Progress
from testbed.topology.model import Topology


@runtime_checkable
class MininetTopo(Protocol):
    """A Mininet Topo object (`TreeTopo(depth=2)`, a user's Topo subclass)."""

    def addSwitch(self, name: str, **opts: Any) -> Any: ...  # noqa: N802 (Mininet's)

    def addHost(self, name: str, **opts: Any) -> Any: ...  # noqa: N802


TopologySource = Topology | MininetTopo | str | os.PathLike[str]


def default_backend() -> Backend:
    from testbed.backends.netns import NetnsBackend

    return NetnsBackend()


def load(topology: TopologySource, params: Mapping[str, object] | None = None,
         name: str | None = None) -> Topology:
    """A topology object, a Mininet Topo, or a file loaded with `params` (values as on
    --set)."""
    if isinstance(topology, MininetTopo):
        if params:
            raise LabError("parameters apply when loading a topology file; give a Mininet "
                           "Topo its options when making it (TreeTopo(depth=2))")
        from testbed.mininet.topo import from_mininet

        return from_mininet(topology, name=name)
    if not isinstance(topology, Topology):
        from testbed.topology.loader import load_topology

        topology = load_topology(Path(topology), {k: param_text(v)
                                                  for k, v in (params or {}).items()})
    elif params:
        raise LabError("parameters apply when loading a topology file; this topology is "
                       "already loaded (pass its path instead)")
    return dataclasses.replace(topology, name=name) if name else topology


def _path(value: str | os.PathLike[str] | None) -> Path | None:
    return Path(value) if value is not None else None


def param_text(value: object) -> str:
    """A parameter value as it would be written after --set."""
    return str(value).lower() if isinstance(value, bool) else str(value)


class Lab:
    def __init__(self, state: LabState, backend: Backend, topology: Topology | None = None,
                 plan: NetworkPlan | None = None) -> None:
        self.state = state
        self.backend = backend
        self._topology = topology
        self._plan = plan

    # --- making and finding labs --------------------------------------------------------
    @classmethod
    def up(cls, topology: TopologySource, params: Mapping[str, object] | None = None, *,
           name: str | None = None, backend: Backend | None = None,
           state_dir: str | os.PathLike[str] | None = None, progress: Progress | None = None,
           **param_values: object) -> Lab:
        """Build a lab from a topology file, a Topology or a Mininet Topo. Parameters (of a
        file) come as a mapping or as keywords (`homes=4`). On any failure or
        interruption, what was made is removed again before this raises."""
        from testbed.lab.lifecycle import bring_up
        from testbed.plan.build import build_plan

        loaded = load(topology, {**(params or {}), **param_values}, name)
        plan = build_plan(loaded)
        lab = cls(LabState(state_root(_path(state_dir)), loaded.name), backend or default_backend(),
                  loaded, plan)
        bring_up(loaded, plan, lab.backend, lab.state, progress or Progress(enabled=False))
        return lab

    @classmethod
    def attach(cls, name: str | None = None, *,
               state_dir: str | os.PathLike[str] | None = None,
               backend: Backend | None = None) -> Lab:
        """A lab that is up (built by `testbed up` or another process); without a name,
        the only one that is up."""
        return cls(find_lab(state_root(_path(state_dir)), name), backend or default_backend())

    def down(self, progress: Progress | None = None) -> list[str]:
        """Remove exactly what the journal lists; notes for the user. Idempotent."""
        from testbed.lab.lifecycle import tear_down

        return tear_down(self.backend, self.state, progress or Progress(enabled=False))

    def __enter__(self) -> Lab:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.down()

    # --- what it is ---------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.state.lab

    @property
    def topology(self) -> Topology:
        if self._topology is None:
            summary = self.state.summary()
            copy = self.state.dir / "topology.yaml"
            source = copy if copy.exists() else Path(summary["source"])
            self._topology = load(source, summary.get("params") or {}, self.name)
        return self._topology

    @property
    def plan(self) -> NetworkPlan:
        """The network as data (plans are deterministic: rebuilt the same on attach)."""
        if self._plan is None:
            from testbed.plan.build import build_plan

            self._plan = build_plan(self.topology)
        return self._plan

    @cached_property
    def runtime(self) -> LabRuntime:
        """Acting on nodes: reboots, kills, link changes, partitions, the peer API."""
        return LabRuntime(self.plan, self.state, self.backend)

    # --- nodes --------------------------------------------------------------------------
    def __getitem__(self, name: str) -> LabNode:
        try:
            return LabNode(self.plan.nodes[name], self.backend)
        except KeyError:
            raise LabError(f"no node {name!r} in lab {self.name!r}") from None

    def __contains__(self, name: object) -> bool:
        return name in self.plan.nodes

    def __iter__(self) -> Iterator[str]:
        return iter(self.plan.nodes)

    @property
    def nodes(self) -> list[LabNode]:
        return [self[name] for name in self.plan.nodes]

    @property
    def hosts(self) -> list[LabNode]:
        """Nodes that run programs (hosts, peers, login servers), not routers or NATs."""
        return [n for n in self.nodes if n.kind in ("host", "peer", "login")
                and n.planned.namespace]

    def get(self, *names: str) -> Any:
        """Nodes by name, as Mininet's net.get: one name gives one node, several a list."""
        nodes = [self[name] for name in names]
        return nodes[0] if len(nodes) == 1 else nodes

    def addr(self, node: str) -> str:
        """A node's first emulated address, without prefix length."""
        address = self[node].ip
        if address is None:
            raise LabError(f"{node} has no address")
        return address

    def exec(self, node: str, *argv: str, timeout: float | None = 30.0,
             check: bool = False) -> Any:
        """Run a program inside a node and wait: a subprocess.CompletedProcess."""
        return self[node].exec(*argv, timeout=timeout, check=check)

    # --- probing it (Mininet's net.ping / net.iperf) -------------------------------------
    def ping(self, nodes: list[str] | None = None, timeout: float = 1.0) -> float:
        """Percent of pings lost, one from every node to every other (Mininet's net.ping);
        without `nodes`, between all hosts (at most 32: pick a sample on bigger labs). A
        node whose address is private to another NAT's realm counts as unreachable."""
        from testbed.lab.probes import loss_percent, ping_pairs

        chosen = [self[n] for n in nodes] if nodes is not None else self.hosts
        if len(chosen) > 32:
            raise LabError(f"{len(chosen)} hosts would take {len(chosen) ** 2} pings: pass "
                           "the nodes to ping, e.g. lab.ping(['home001', 'login'])")
        return loss_percent(ping_pairs(chosen, timeout, plan=self.plan))

    def iperf(self, client: str, server: str, seconds: float = 5.0,
              udp_bw: str | None = None) -> Any:
        """An iperf3 test from client to server: .received_bps, .sent_bps (refused when
        the server's address is private to another NAT's realm)."""
        from testbed.lab.probes import IPERF_PORT, iperf

        return iperf(self[client], self[server], seconds, udp_bw, IPERF_PORT, self.plan)

    # --- changing it --------------------------------------------------------------------
    def reboot(self, *nodes: str, down_time: float = 5.0, mode: str = "hard",
               say: Callable[[str], None] | None = None) -> None:
        """Reboot nodes as a PC reboots: processes die, links go down for `down_time`,
        then links, routes and services come back. `say` hears each node go and return
        (`testbed reboot` prints it)."""
        import time

        for node in nodes:
            self.runtime.node(node)  # unknown or namespace-less nodes fail first
        for node in nodes:
            killed = self.runtime.host_down(node, mode)
            if say:
                say(f"{node}: down ({killed} processes ended, links down)")
        time.sleep(max(0.0, down_time))
        for node in nodes:
            started = self.runtime.host_up(node)
            if say:
                say(f"{node}: up again ({started} services started)")

    def link(self, a: str, b: str, up: bool) -> None:
        """Take the link between two nodes down or up, both ends (Mininet's `link a b
        down`). Nodes joined through a switch: the port of `a` on it; two switches: the
        link between their bridges."""
        ends = []
        for here, there in ((a, b), (b, a)):
            node = self[here].planned
            if node.namespace:
                ends += [VethEnd(node.namespace, i.name) for i in node.interfaces
                         if i.peer == there]
        bridges = self.plan.switch_bridges()
        if a in bridges and b in bridges:  # two switches: the veth between their bridges
            ends = [end for veth in self.plan.veths if {veth.a.bridge, veth.b.bridge}
                    == {bridges[a], bridges[b]} for end in (veth.a, veth.b)]
        if not ends:
            raise LabError(f"no link between {a} and {b} in lab {self.name!r}")
        for end in ends:
            self.backend.set_link_end(end, up)
        if up:
            self._restore_routes(a, b, ends)
        self.state.record({"op": "link_state", "a": a, "b": b, "up": up})

    def set_link(self, node: str, **change: object) -> None:
        """Reshape a node's uplink now, with the keys and units of a scenario's set_link
        (`lab.set_link("home001", up="256kbit", loss="2%")`); reset_link undoes it."""
        from testbed.links.change import parse_link_change
        from testbed.units import UnitError

        try:
            values = parse_link_change(dict(change))
        except UnitError as exc:
            raise LabError(f"set_link {node}: {exc}") from None
        self.runtime.set_link(node, values)

    def reset_link(self, node: str) -> None:
        """A node's uplink back to the topology's shaping."""
        self.runtime.reset_link(node)

    def _restore_routes(self, a: str, b: str, ends: list[VethEnd]) -> None:
        """The kernel dropped the routes through a link that went down: put back the
        nodes' routes whose gateway is on an interface that came up."""
        import ipaddress

        for name in dict.fromkeys((a, b)):
            node = self[name]
            nets = [ipaddress.ip_interface(i.address).network for i in node.planned.interfaces
                    if i.address and VethEnd(node.planned.namespace or "", i.name) in ends]
            for route in node.planned.routes:
                if any(ipaddress.ip_address(route.via) in net for net in nets):
                    node.exec("ip", "route", "replace", route.destination, "via", route.via,
                              check=True)

    def write_inventory(self) -> Path:
        """The lab's Ansible inventory (kind_*, group_*, label_* groups)."""
        from testbed.inventory import write_inventory

        return write_inventory(self.state)

    def __repr__(self) -> str:
        return f"<Lab {self.name} ({self.state.dir})>"
