"""nftables text shared by forwarding nodes: management isolation and egress policy."""

from __future__ import annotations

from collections.abc import Iterable

from testbed.plan.model import NetworkPlan, PlannedNode


def forward_chain(node: PlannedNode, plan: NetworkPlan, extra: Iterable[str] = ()) -> str:
    """The filter/forward chain: never forward to or from the management interface."""
    mgmt = node.mgmt_interface or "mgmt0"  # eth0 in a containerlab export
    rules = [
        f'iifname "{mgmt}" drop',
        f'oifname "{mgmt}" drop',
        *egress_rules(node, plan),
        *extra,
    ]
    body = "\n".join(f"    {r}" for r in rules)
    return ("  chain forward {\n    type filter hook forward priority filter; policy accept;\n"
            f"{body}\n  }}\n")


def egress_rules(node: PlannedNode, plan: NetworkPlan) -> list[str]:
    """proxy-only: from the inside, only the proxy (or traffic to the proxy) gets out."""
    fw = node.node.firewall
    wan = node.uplink_interface
    if fw is None or fw.egress != "proxy-only" or fw.proxy is None or wan is None:
        return []
    proxy = plan.nodes[fw.proxy]
    addresses = ", ".join(proxy.addresses()) or "0.0.0.0"
    port = proxy.node.proxy.port if proxy.node.proxy else 8888
    return [
        f'iifname != "{wan}" oifname "{wan}" ip saddr {{ {addresses} }} accept',
        f'iifname != "{wan}" oifname "{wan}" ip daddr {{ {addresses} }} tcp dport {port} accept',
        f'iifname != "{wan}" oifname "{wan}" drop',
        f'iifname "{wan}" oifname != "{wan}" ip daddr != {{ {addresses} }} ct state new drop',
    ]
