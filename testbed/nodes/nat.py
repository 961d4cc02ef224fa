"""`nat`: a home or corporate NAT box with one of the four classic behaviours.

Built from nftables inside the NAT's own namespace:
- port-restricted-cone: Linux masquerade as is. The source port is kept (endpoint-
  independent mapping) and conntrack lets in only replies from the exact address:port.
- symmetric: masquerade with fully-random ports, so every destination gets its own
  public port (endpoint-dependent mapping).
- full-cone / restricted-cone: masquerade plus a dynamic map, refreshed by every outgoing
  UDP packet, from the public port (and, restricted, the remote address) to the inside
  host; unsolicited UDP that matches the map is forwarded in (DNAT).
The mapping idles out after `udp_timeout`, in the maps and in conntrack alike.
Unsolicited TCP/UDP for the NAT's own public address is dropped silently before conntrack
records it: a recorded flow remote:port -> public:port would make masquerade give the
inside host's next packet to that remote a new public port, breaking the cone mapping
exactly when a hole-punching peer's packet arrives before the inside host's.
Cone maps assume the public port equals the inside port, which masquerade keeps unless
two inside hosts use the same port at once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from testbed.nodes.base import NodeKind, NodeSetup
from testbed.nodes.firewall import forward_chain
from testbed.nodes.router import check_firewall
from testbed.topology.model import NatSettings

if TYPE_CHECKING:
    from testbed.errors import Problem
    from testbed.plan.model import NetworkPlan, PlannedNode
    from testbed.topology.model import Node, Topology


class NatKind(NodeKind):
    name: ClassVar[str] = "nat"
    description: ClassVar[str] = ("a NAT gateway (full-cone, restricted-cone, "
                                  "port-restricted-cone, symmetric); its inside is a realm")
    is_gateway: ClassVar[bool] = True
    forwards: ClassVar[bool] = True
    sections: ClassVar[frozenset[str]] = frozenset({"nat", "firewall", "lan_pool"})

    def validate(self, node: Node, topology: Topology) -> list[Problem]:
        return check_firewall(node, topology)

    def setup(self, node: PlannedNode, plan: NetworkPlan) -> NodeSetup:
        setup = super().setup(node, plan)
        settings = node.node.nat or NatSettings()
        timeout = max(1, int(round(settings.udp_timeout)))
        setup.sysctls["net.netfilter.nf_conntrack_udp_timeout"] = str(timeout)
        setup.sysctls["net.netfilter.nf_conntrack_udp_timeout_stream"] = str(timeout)
        wan = node.uplink_interface
        if wan is None:
            return setup  # validated elsewhere: a nat without uplink has no outside
        setup.nft_ruleset = nat_ruleset(settings.type, wan, timeout, forward_chain(
            node, plan, extra=[
                "ct state established,related accept",
                f'iifname "{wan}" ct status dnat accept',
                f'iifname "{wan}" drop',
            ]))
        return setup


def nat_ruleset(nat_type: str, wan: str, timeout: int, forward: str) -> str:
    masquerade = "masquerade fully-random" if nat_type == "symmetric" else "masquerade"
    maps, learn, inbound = "", "", ""
    if nat_type == "full-cone":
        maps = _map("cone", "inet_service", timeout)
        learn = (f'iifname != "{wan}" ip protocol udp '
                 "update @cone { udp sport : ip saddr . udp sport }")
        inbound = f'iifname "{wan}" ip protocol udp dnat ip to udp dport map @cone'
    elif nat_type == "restricted-cone":
        maps = _map("cone", "inet_service . ipv4_addr", timeout)
        learn = (f'iifname != "{wan}" ip protocol udp '
                 "update @cone { udp sport . ip daddr : ip saddr . udp sport }")
        inbound = f'iifname "{wan}" ip protocol udp dnat ip to udp dport . ip saddr map @cone'
    learn_chain = (
        "  chain learn {\n    type filter hook prerouting priority mangle; policy accept;\n"
        f"    {learn}\n  }}\n" if learn else "")
    inbound_rule = f"    {inbound}\n" if inbound else ""
    return (
        "table ip testbed {\n"
        f"{maps}{learn_chain}"
        "  chain prerouting {\n    type nat hook prerouting priority dstnat; policy accept;\n"
        f"{inbound_rule}  }}\n"
        "  chain postrouting {\n    type nat hook postrouting priority srcnat; policy accept;\n"
        f'    oifname "{wan}" {masquerade}\n  }}\n'
        "  chain input {\n    type filter hook input priority filter; policy accept;\n"
        f'    iifname "{wan}" meta l4proto {{ tcp, udp }} ct state new drop\n  }}\n'
        f"{forward}"
        "}\n"
    )


def _map(name: str, key: str, timeout: int) -> str:
    return (f"  map {name} {{\n    type {key} : ipv4_addr . inet_service\n"
            f"    flags dynamic,timeout\n    timeout {timeout}s\n  }}\n")
