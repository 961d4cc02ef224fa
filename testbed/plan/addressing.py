"""Subnet and address allocation per realm (the public internet, or the inside of a NAT).

Pinned addresses are honoured and checked for clashes; the rest is allocated from the
realm's pool in a deterministic order, so the same topology always gets the same addresses.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterator

from testbed.errors import Problem
from testbed.plan.model import Interface, PlannedNode, Segment

Report = Callable[[Problem], None]


def prefix_for(members: int, realm_is_public: bool, is_switch: bool) -> int:
    """Smallest subnet holding the members (+ network/broadcast); private LANs get a /24."""
    if not realm_is_public:
        needed = max(members + 2, 256)
    elif not is_switch and members <= 2:
        return 30
    else:
        needed = members + 2
    prefix = 32
    while 2 ** (32 - prefix) < needed:
        prefix -= 1
    return prefix


def allocate_realm(realm: str, pool_text: str, segments: list[Segment],
                   nodes: dict[str, PlannedNode], source: str, report: Report,
                   skip_first: bool, line_of: Callable[[str], int | None] | None = None
                   ) -> None:
    """`line_of` finds the line of a key path, so pinning mistakes point at the `ip:`."""

    def problem(message: str, node: str, iface: Interface | None = None) -> Problem:
        path = (iface.pin if iface else None) or f"nodes.{node}"
        line = line_of(path) if line_of else None
        return Problem(message, source, line or nodes[node].node.line, path)

    pool = ipaddress.IPv4Network(pool_text)
    used: dict[ipaddress.IPv4Address, str] = {}
    taken: list[ipaddress.IPv4Network] = []
    # 1. pinned addresses fix their segment's subnet
    for seg in segments:
        pinned = [(node, iface) for node, iface in seg.members
                  if _iface(nodes, node, iface).address]
        for node, iface_name in pinned:
            iface = _iface(nodes, node, iface_name)
            addr = ipaddress.IPv4Interface(iface.address or "")
            if seg.subnet and ipaddress.IPv4Network(seg.subnet) != addr.network:
                report(problem(f"pinned address {addr} is not in {seg.subnet}, the subnet "
                               f"another pinned address gives this link; pin addresses of "
                               f"one subnet on one link", node, iface))
                continue
            seg.subnet = str(addr.network)
            if addr.ip in used:
                report(problem(f"address {addr.ip} is used twice in realm {realm}: by "
                               f"{used[addr.ip]} and {node}; each address may be used once "
                               f"per realm", node, iface))
            used[addr.ip] = node
        if seg.subnet:
            pinned_net = ipaddress.IPv4Network(seg.subnet)
            for other in taken:
                if pinned_net.overlaps(other):  # the same subnet on two links clashes too
                    node, iface_name = pinned[0]
                    report(problem(f"subnet {pinned_net} overlaps {other} on another link in realm "
                                   f"{realm}; each link (or switch segment) needs its own "
                                   f"subnet", node, _iface(nodes, node, iface_name)))
                    break
            taken.append(pinned_net)
    # 2. unpinned segments get the next free aligned block, largest first
    pinned_nets = list(taken)
    public = realm == "public"
    order = sorted((s for s in segments if not s.subnet),
                   key=lambda s: (prefix_for(len(s.members), public, s.bridge is not None),
                                  s.id))
    cursor = int(pool.network_address)
    first = True
    for seg in order:
        prefix = prefix_for(len(seg.members), public, seg.bridge is not None)
        size = 2 ** (32 - prefix)
        net: ipaddress.IPv4Network | None = None
        while True:
            cursor = -(-cursor // size) * size
            if skip_first and first and cursor == int(pool.network_address) and size < (
                    pool.num_addresses):
                cursor += size
            candidate = ipaddress.IPv4Network(f"{ipaddress.IPv4Address(cursor)}/{prefix}")
            if not candidate.subnet_of(pool):
                report(Problem(f"address pool {pool} of realm {realm} is full; give a larger "
                               f"pool in addressing: or lan_pool:", source, None, "addressing"))
                return
            cursor += size
            # blocks allocated here all lie below the cursor: only pinned ones can clash
            if not any(candidate.overlaps(t) for t in pinned_nets):
                net = candidate
                break
        first = False
        seg.subnet = str(net)
    # 3. hosts addresses: gateway first, then members in order
    for seg in segments:
        net = ipaddress.IPv4Network(seg.subnet or "")
        free = _free_hosts(net, used)
        ordered = sorted(seg.members, key=lambda m: m[0] != seg.gateway)
        for node, iface_name in ordered:
            iface = _iface(nodes, node, iface_name)
            if iface.address:
                continue
            try:
                ip = next(free)
            except StopIteration:
                report(problem(f"subnet {net} has no free address left for {node}", node))
                break
            used[ip] = node
            iface.address = f"{ip}/{net.prefixlen}"


def _free_hosts(net: ipaddress.IPv4Network | ipaddress.IPv6Network,
                used: dict[ipaddress.IPv4Address, str]) -> Iterator[ipaddress.IPv4Address]:
    for host in net.hosts():
        if host not in used:
            yield host  # type: ignore[misc]


def _iface(nodes: dict[str, PlannedNode], node: str, name: str) -> Interface:
    for iface in nodes[node].interfaces:
        if iface.name == name:
            return iface
    raise KeyError(f"{node}:{name}")
