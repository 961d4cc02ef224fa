"""`router`: forwards between its links; routes are computed by the plan."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from testbed.errors import Problem
from testbed.nodes.base import NodeKind, NodeSetup
from testbed.nodes.firewall import forward_chain

if TYPE_CHECKING:
    from testbed.plan.model import NetworkPlan, PlannedNode
    from testbed.topology.model import Node, Topology


def check_firewall(node: Node, topology: Topology) -> list[Problem]:
    fw = node.firewall
    if fw is None or fw.egress != "proxy-only":
        return []
    path = f"nodes.{node.name}.firewall.proxy"
    if fw.proxy is None:
        return [Problem("egress: proxy-only needs proxy: (the proxy node's name)",
                        topology.source, node.line, path)]
    target = topology.nodes.get(fw.proxy)
    if target is None or target.kind != "proxy":
        proxies = ", ".join(n.name for n in topology.nodes_of_kind("proxy")) or "none"
        return [Problem(f"{fw.proxy!r} is not a proxy node; proxy nodes: {proxies}",
                        topology.source, node.line, path)]
    return []


class RouterKind(NodeKind):
    name: ClassVar[str] = "router"
    description: ClassVar[str] = "an IP router; optional egress firewall (proxy-only sites)"
    is_gateway: ClassVar[bool] = True
    forwards: ClassVar[bool] = True
    sections: ClassVar[frozenset[str]] = frozenset({"firewall"})

    def validate(self, node: Node, topology: Topology) -> list[Problem]:
        return check_firewall(node, topology)

    def setup(self, node: PlannedNode, plan: NetworkPlan) -> NodeSetup:
        setup = super().setup(node, plan)
        setup.nft_ruleset = f"table ip testbed {{\n{forward_chain(node, plan)}}}\n"
        return setup
