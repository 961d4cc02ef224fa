"""What a node kind is: its rules (validation) and what it needs at run time (setup).

A kind never touches the kernel itself: `setup` returns pure data (sysctls, an nftables
ruleset, files, services) that a backend applies. That keeps kinds unit-testable.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from testbed.errors import Problem
    from testbed.plan.model import NetworkPlan, PlannedNode
    from testbed.topology.model import Node, Topology


@dataclass(frozen=True)
class ServiceSpec:
    """A long-running process to start inside a node's namespace."""

    name: str
    argv: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)
    # the reference peer: fork it from the lab's pre-forking launcher (shared memory)
    # instead of starting a new interpreter; `argv` stays the equivalent command line
    peer_config: str | None = None
    # `up` waits this long once after starting every service, then fails (and rolls the
    # lab back) if the process is gone: a daemon that exits at once on a bad config or a
    # port in use (kamailio, baresip) must not leave a lab that only looks up
    settle: float = 0.0


@dataclass
class NodeSetup:
    """Everything a node needs beyond its interfaces, addresses and routes."""

    sysctls: dict[str, str] = field(default_factory=dict)
    nft_ruleset: str = ""
    files: dict[str, str] = field(default_factory=dict)  # name in the node dir -> content
    services: list[ServiceSpec] = field(default_factory=list)
    # what its services may come to write into the node's state directory (a CDN's
    # episodes): all nodes' together must fit the state directory's free space
    disk_bytes: int = 0


class NodeKind:
    """Base of every node kind; subclasses register themselves in the registry."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    has_namespace: ClassVar[bool] = True
    is_gateway: ClassVar[bool] = False  # may be the target of another node's uplink
    forwards: ClassVar[bool] = False  # routes packets between its interfaces
    sections: ClassVar[frozenset[str]] = frozenset({"command", "env"})

    def validate(self, node: Node, topology: Topology) -> list[Problem]:
        """Kind-specific checks beyond the schema."""
        return []

    def setup(self, node: PlannedNode, plan: NetworkPlan) -> NodeSetup:
        """Sysctls, firewall and services this node needs at run time."""
        return NodeSetup(sysctls={"net.ipv4.ip_forward": "1" if self.forwards else "0"})
