"""Plan dataclasses: what the backend will create, named exactly as it will exist."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from testbed.plan.mgmt import MgmtShard
from testbed.topology.model import Node, OverlaySettings


@dataclass(frozen=True)
class Shaping:
    """Egress impairments applied at one veth end."""

    rate: int | None = None
    queue: int | None = None
    loss: float | None = None
    delay: float | None = None
    jitter: float | None = None

    def is_empty(self) -> bool:
        return self.rate is None and self.loss is None and self.delay is None


@dataclass
class Interface:
    """An interface inside a node's namespace."""

    name: str
    segment: int
    address: str | None = None  # CIDR, e.g. 198.18.0.2/30
    peer: str | None = None  # node at the other end (p2p) or the switch
    shaping: Shaping = field(default_factory=Shaping)
    pin: str | None = None  # key path that pinned `address` (e.g. nodes.pc.uplink.ip)


@dataclass(frozen=True)
class Route:
    destination: str  # CIDR or "default"
    via: str


@dataclass
class PlannedNode:
    node: Node
    namespace: str | None
    realm: str
    interfaces: list[Interface] = field(default_factory=list)
    routes: list[Route] = field(default_factory=list)
    mgmt_interface: str | None = None
    mgmt_address: str | None = None
    uplink_interface: str | None = None
    inner_realm: str | None = None  # for nat nodes: the realm behind them

    @property
    def name(self) -> str:
        return self.node.name

    @property
    def kind(self) -> str:
        return self.node.kind

    def addresses(self) -> list[str]:
        """Bare addresses (no prefix) of the emulated interfaces."""
        return [i.address.split("/")[0] for i in self.interfaces if i.address]

    def primary_address(self) -> str | None:
        addresses = self.addresses()
        return addresses[0] if addresses else None


@dataclass(frozen=True)
class VethEnd:
    namespace: str
    name: str
    bridge: str | None = None  # enslaved to this bridge (fabric / mgmt ends)
    isolated: bool = False  # bridge port isolation (mgmt ports)
    shaping: Shaping = Shaping()


@dataclass(frozen=True)
class Veth:
    a: VethEnd
    b: VethEnd


@dataclass
class Segment:
    """One L2 broadcast domain: a p2p link or a cluster of connected switches."""

    id: int
    realm: str
    members: list[tuple[str, str]] = field(default_factory=list)  # (node, interface)
    gateway: str | None = None
    subnet: str | None = None
    bridge: str | None = None  # bridge name in the fabric namespace (switch segments)


@dataclass
class NetworkPlan:
    lab: str
    fabric_namespace: str
    mgmt_namespace: str
    mgmt_bridge: str
    mgmt_bridge_address: str
    nodes: dict[str, PlannedNode]
    segments: list[Segment]
    veths: list[Veth]
    bridges: list[str]  # in the fabric namespace
    ovs_bridges: dict[str, str] = field(default_factory=dict)  # bridge -> OVS datapath
    overlay: OverlaySettings | None = None
    mgmt_shards: list[MgmtShard] = field(default_factory=list)  # mgmt bridges (plan/mgmt.py)
    # derived facts computed once per plan (the overlay's supernode list, a node's setup):
    # at 5,000 nodes, recomputing them per node made a build quadratic
    memo: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def switch_bridges(self) -> dict[str, str]:
        """Switch name -> its bridge in the fabric namespace (one bridge per switch, made in
        the topology's order)."""
        switches = [n.name for n in self.nodes.values() if n.kind == "switch"]
        return dict(zip(switches, self.bridges, strict=False))

    def namespaces(self) -> list[str]:
        """Every namespace of the lab, node namespaces first."""
        own = [n.namespace for n in self.nodes.values() if n.namespace]
        return [*own, self.fabric_namespace, self.mgmt_namespace]


def namespace_name(lab: str, node: str) -> str:
    return f"tb-{lab}-{node}"


def infra_namespace(lab: str, role: str) -> str:
    """fabric/mgmt namespaces: '--' cannot clash with a node (names never start with '-')."""
    return f"tb-{lab}--{role}"
