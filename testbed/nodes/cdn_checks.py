"""Checks shared by the CDN kinds: the things a lab cannot recover from once built
(no origin or tracker, a catalogue bigger than a disk, a rate the links cannot carry)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from testbed.errors import Problem
from testbed.units import format_bandwidth

if TYPE_CHECKING:
    from testbed.topology.model import Node, Topology


def path_rate(node: Node, topology: Topology, direction: str = "up") -> int | None:
    """The narrowest upload (`up`) or download (`down`) rate on the node's way out through
    its gateways (None: nothing shapes it)."""
    rates: list[int] = []
    seen: set[str] = set()
    name: str | None = node.name
    while name is not None and name not in seen and name in topology.nodes:
        seen.add(name)
        for link in topology.links:
            rate = link.rate_ab if direction == "up" else link.rate_ba
            if link.uplink_of_a and link.a == name and rate is not None:
                rates.append(rate)
        name = topology.nodes[name].uplink
    return min(rates) if rates else None


def one_of(kind: str, node: Node, topology: Topology, why: str) -> list[Problem]:
    found = topology.nodes_of_kind(kind)
    if len(found) == 1:
        return []
    got = "none" if not found else ", ".join(n.name for n in found)
    return [Problem(f"a {node.kind} needs exactly one node of kind {kind} ({why}); the "
                    f"topology has {got}", topology.source, node.line,
                    f"nodes.{node.name}.kind")]


def rate_fits(node: Node, topology: Topology, rate: int | None, path: str,
              direction: str = "up", why: str = "") -> list[Problem]:
    link = path_rate(node, topology, direction)
    if rate is None or link is None or rate <= link:
        return []
    way = "upload on the way out of" if direction == "up" else "download on the way into"
    return [Problem(f"{format_bandwidth(rate)} is more than the links can carry: the "
                    f"narrowest {way} {node.name} is {format_bandwidth(link)}{why}",
                    topology.source, node.line, path)]
