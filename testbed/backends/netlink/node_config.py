"""What one node's namespace needs after its links exist, as plain data taken from the
plan: the same addresses, routes and shaping the iproute2 path writes as batch lines."""

from __future__ import annotations

from dataclasses import dataclass, field

from testbed.plan.model import PlannedNode, Shaping, VethEnd


@dataclass
class NodeConfig:
    namespace: str
    up: list[str] = field(default_factory=list)  # interfaces to bring up, lo first
    addresses: list[tuple[str, str]] = field(default_factory=list)  # (interface, CIDR)
    routes: list[tuple[str, str]] = field(default_factory=list)  # (destination, via)
    shaping: list[tuple[str, Shaping]] = field(default_factory=list)  # (device, egress)

    def needs_netem(self) -> bool:
        return any(s.delay is not None or s.jitter is not None or s.loss is not None
                   for _, s in self.shaping)


def node_config(node: PlannedNode, ends: list[VethEnd]) -> NodeConfig:
    """A held-back node (dark until add_nodes) gets addresses but no links up, no routes."""
    config = NodeConfig(node.namespace or "", up=["lo"])
    held = node.node.held_back
    for iface in node.interfaces:
        if iface.address:
            config.addresses.append((iface.name, iface.address))
        if not held:
            config.up.append(iface.name)
    if node.mgmt_interface and node.mgmt_address:
        config.addresses.append((node.mgmt_interface, node.mgmt_address))
        config.up.append(node.mgmt_interface)
    if not held:
        config.routes = [(r.destination, r.via) for r in node.routes]
    config.shaping = [(end.name, end.shaping) for end in ends]
    return config
