"""Topology -> NetworkPlan: segments, interfaces, realms, addresses, routes, veths."""

from __future__ import annotations

from testbed.errors import Problem, TopologyError
from testbed.nodes.registry import KindRegistry, default_registry
from testbed.plan.addressing import allocate_realm
from testbed.plan.mgmt import MgmtAllocator
from testbed.plan.model import (
    Interface,
    NetworkPlan,
    PlannedNode,
    Route,
    Segment,
    Shaping,
    Veth,
    VethEnd,
    infra_namespace,
    namespace_name,
)
from testbed.topology.model import Link, Topology

PUBLIC = "public"
MAX_BRIDGE_PORTS = 1000  # the kernel's limit is 1024 per bridge


class _Builder:
    def __init__(self, topology: Topology, registry: KindRegistry) -> None:
        self.topo = topology
        self.registry = registry
        self.problems: list[Problem] = []
        self.fabric = infra_namespace(topology.name, "fabric")
        self.mgmt = infra_namespace(topology.name, "mgmt")
        self.nodes: dict[str, PlannedNode] = {}
        self.segments: list[Segment] = []
        self.veths: list[Veth] = []
        self.bridges: list[str] = []
        self.ovs_bridges: dict[str, str] = {}
        self.switch_segment: dict[str, Segment] = {}
        self.bridge_of: dict[str, str] = {}
        self.port_counter = 0
        self.mgmt_alloc = MgmtAllocator(topology.addressing.mgmt)

    def report(self, message: str, node: str | None, path: str) -> None:
        line = self.topo.line_of(path)
        if line is None and node in self.topo.nodes:
            line = self.topo.nodes[node].line
        self.problems.append(Problem(message, self.topo.source, line, path))

    def is_switch(self, name: str) -> bool:
        return self.topo.nodes[name].kind == "switch"

    def build(self) -> NetworkPlan:
        for node in self.topo.nodes.values():
            kind = self.registry.get(node.kind)
            namespace = namespace_name(self.topo.name, node.name) if kind.has_namespace else None
            self.nodes[node.name] = PlannedNode(node=node, namespace=namespace, realm=PUBLIC)
        self._switch_clusters()
        self._links()
        self._realms()
        self._addresses()
        self._routes()
        self._mgmt()
        if self.problems:
            raise TopologyError(self.problems)
        return NetworkPlan(
            lab=self.topo.name, fabric_namespace=self.fabric, mgmt_namespace=self.mgmt,
            mgmt_bridge=self.mgmt_alloc.hub().bridge,
            mgmt_bridge_address=self.mgmt_alloc.hub().address, mgmt_shards=self.mgmt_alloc.shards,
            nodes=self.nodes, segments=self.segments, veths=self.veths, bridges=self.bridges,
            ovs_bridges=self.ovs_bridges,
            overlay=self.topo.overlay,
        )

    # --- L2 -------------------------------------------------------------------------
    def _switch_clusters(self) -> None:
        """Switches joined by links form one segment (one subnet). Each switch is its own
        bridge, as a Linux bridge holds at most 1024 ports; bridges are joined by veths."""
        parent = {n: n for n, node in self.topo.nodes.items() if node.kind == "switch"}

        def find(x: str) -> str:
            while parent[x] != x:
                parent[x] = parent[parent[x]]
                x = parent[x]
            return x

        for link in self.topo.links:
            if link.a in parent and link.b in parent:
                parent[find(link.a)] = find(link.b)
        for name in parent:
            root = find(name)
            if root not in self.switch_segment:
                self.switch_segment[root] = self._new_segment()
            self.switch_segment[name] = self.switch_segment[root]
            self.bridge_of[name] = f"br{len(self.bridges)}"
            self.bridges.append(self.bridge_of[name])
            settings = self.topo.nodes[name].switch
            if settings is not None and settings.type == "ovs":
                self.ovs_bridges[self.bridge_of[name]] = settings.datapath
            self.switch_segment[name].bridge = self.bridge_of[name]
        ports: dict[str, int] = {}
        for link in self.topo.links:
            for end in (link.a, link.b):
                if end in parent:
                    ports[end] = ports.get(end, 0) + 1
        for name, count in ports.items():
            if count > MAX_BRIDGE_PORTS:
                self.report(f"switch {name} has {count} links; a switch holds at most "
                            f"{MAX_BRIDGE_PORTS}: split it into several linked switches",
                            name, f"nodes.{name}")

    def _new_segment(self) -> Segment:
        seg = Segment(id=len(self.segments), realm=PUBLIC)
        self.segments.append(seg)
        return seg

    def _next_iface(self, node: str) -> str:
        return f"eth{len(self.nodes[node].interfaces)}"

    def _links(self) -> None:
        # uplinks first so that a node's uplink is always eth0
        ordered = sorted(self.topo.links, key=lambda link: not link.uplink_of_a)
        for link in ordered:
            a_sw, b_sw = self.is_switch(link.a), self.is_switch(link.b)
            shape_ab = Shaping(link.rate_ab, link.queue, link.loss, link.delay, link.jitter)
            shape_ba = Shaping(link.rate_ba, link.queue, link.loss, link.delay, link.jitter)
            if a_sw and b_sw:
                self._switch_to_switch(link, shape_ab, shape_ba)
            elif a_sw or b_sw:
                host, switch = (link.b, link.a) if a_sw else (link.a, link.b)
                out, back = (shape_ba, shape_ab) if a_sw else (shape_ab, shape_ba)
                ip = link.ip_b if a_sw else link.ip_a
                pin = link.pin_path("b" if a_sw else "a") if ip else None
                self._attach(host, switch, out, back, ip, link, pin)
            else:
                self._p2p(link, shape_ab, shape_ba)

    def _switch_to_switch(self, link: Link, ab: Shaping, ba: Shaping) -> None:
        k = self._port()
        self.veths.append(
            Veth(VethEnd(self.fabric, f"s{k}a", self.bridge_of[link.a], shaping=ab),
                 VethEnd(self.fabric, f"s{k}b", self.bridge_of[link.b], shaping=ba)))

    def _attach(self, host: str, switch: str, out: Shaping, back: Shaping, ip: str | None,
                link: Link, pin: str | None) -> None:
        seg = self.switch_segment[switch]
        planned = self.nodes[host]
        iface = Interface(self._next_iface(host), seg.id, ip, switch, out, pin)
        planned.interfaces.append(iface)
        seg.members.append((host, iface.name))
        if link.uplink_of_a and link.a == host:
            planned.uplink_interface = iface.name
        if link.uplink_of_a and link.a == switch:
            if seg.gateway not in (None, host):
                self.report(f"switches of one segment uplink to two gateways: {seg.gateway} "
                            f"and {host}", switch, f"nodes.{switch}.uplink.to")
            seg.gateway = host
        k = self._port()
        self.veths.append(Veth(VethEnd(planned.namespace or "", iface.name, shaping=out),
                               VethEnd(self.fabric, f"p{k}", self.bridge_of[switch],
                                       shaping=back)))

    def _p2p(self, link: Link, ab: Shaping, ba: Shaping) -> None:
        seg = self._new_segment()
        a, b = self.nodes[link.a], self.nodes[link.b]
        ia = Interface(self._next_iface(link.a), seg.id, link.ip_a, link.b, ab,
                       link.pin_path("a") if link.ip_a else None)
        a.interfaces.append(ia)
        ib = Interface(self._next_iface(link.b), seg.id, link.ip_b, link.a, ba,
                       link.pin_path("b") if link.ip_b else None)
        b.interfaces.append(ib)
        seg.members += [(link.a, ia.name), (link.b, ib.name)]
        if link.uplink_of_a:
            a.uplink_interface = ia.name
            seg.gateway = link.b
        self.veths.append(Veth(VethEnd(a.namespace or "", ia.name, shaping=ab),
                               VethEnd(b.namespace or "", ib.name, shaping=ba)))

    def _port(self) -> int:
        self.port_counter += 1
        return self.port_counter

    # --- L3 -------------------------------------------------------------------------
    def _uplink_segment(self, name: str) -> Segment | None:
        node = self.topo.nodes[name]
        if node.uplink is None:
            return None
        if self.is_switch(name):
            return self.switch_segment[name]
        iface = self.nodes[name].uplink_interface
        for i in self.nodes[name].interfaces:
            if i.name == iface:
                return self.segments[i.segment]
        return None

    def _realm_of_segment(self, seg: Segment, depth: int = 0) -> str:
        if seg.gateway is None or depth > len(self.nodes):
            if seg.bridge is None and seg.members:  # extra p2p link: realm of its ends
                return self._realm_of_node(seg.members[0][0], depth + 1)
            return PUBLIC
        if self.topo.nodes[seg.gateway].kind == "nat":
            return f"nat:{seg.gateway}"
        return self._realm_of_node(seg.gateway, depth + 1)

    def _realm_of_node(self, name: str, depth: int = 0) -> str:
        seg = self._uplink_segment(name)
        if seg is None or depth > len(self.nodes):
            return PUBLIC
        return self._realm_of_segment(seg, depth + 1)

    def _realms(self) -> None:
        for seg in self.segments:
            seg.realm = self._realm_of_segment(seg)
        for name, planned in self.nodes.items():
            planned.realm = self._realm_of_node(name)
            if planned.kind == "nat":
                planned.inner_realm = f"nat:{name}"
        for seg in self.segments:
            if seg.bridge is None and seg.gateway is None and len(seg.members) == 2:
                (a, _), (b, _) = seg.members
                if self.nodes[a].realm != self.nodes[b].realm:
                    self.report(f"link {a} -- {b} joins two address realms "
                                f"({self.nodes[a].realm}, {self.nodes[b].realm}); only a nat "
                                f"may stand between realms (as the uplink target)", a,
                                self._link_path(a, b))

    def _link_path(self, a: str, b: str) -> str:
        for link in self.topo.links:
            if {link.a, link.b} == {a, b} and link.path:
                return link.path
        return f"nodes.{a}.links"

    def _addresses(self) -> None:
        by_realm: dict[str, list[Segment]] = {}
        for seg in self.segments:
            if seg.members:
                by_realm.setdefault(seg.realm, []).append(seg)
        for realm, segs in sorted(by_realm.items()):
            if realm == PUBLIC:
                pool, skip = self.topo.addressing.public, False
            else:
                nat = self.topo.nodes[realm.split(":", 1)[1]]
                pool, skip = nat.lan_pool or self.topo.addressing.private, True
            allocate_realm(realm, pool, segs, self.nodes, self.topo.source,
                           self.problems.append, skip_first=skip, line_of=self.topo.line_of)

    def _address_on(self, node: str, seg: Segment) -> str | None:
        for iface in self.nodes[node].interfaces:
            if iface.segment == seg.id and iface.address:
                return iface.address.split("/")[0]
        return None

    def _routes(self) -> None:
        if self.problems:
            return
        for name, planned in self.nodes.items():
            seg = self._uplink_segment(name)
            if planned.namespace and seg is not None and seg.gateway not in (None, name):
                via = self._address_on(seg.gateway or "", seg)
                if via:
                    planned.routes.append(Route("default", via))
        # routers learn the subnets below them, up to the realm's edge
        for seg in self.segments:
            if not seg.subnet or seg.gateway is None:
                continue
            current = seg.gateway
            for _ in range(len(self.nodes)):
                if self.nodes[current].inner_realm == seg.realm:
                    break
                up = self._uplink_segment(current)
                if up is None or up.gateway is None or up.gateway == current:
                    break
                via = self._address_on(current, up)
                parent = self.nodes[up.gateway]
                if via and parent.namespace:
                    parent.routes.append(Route(seg.subnet, via))
                current = up.gateway

    def _mgmt(self) -> None:
        """Every namespaced node gets mgmt0 on one of the sharded mgmt bridges (plan/mgmt.py)."""
        for planned in [None, *self.nodes.values()]:  # None: the hub, before any node
            if planned is not None and not planned.namespace:
                continue
            try:
                if planned is None:
                    self.mgmt_alloc.hub()
                    continue
                shard, address = self.mgmt_alloc.next()
            except ValueError:
                self.report(f"management network {self.topo.addressing.mgmt} is too small "
                            f"for the lab's {sum(1 for n in self.nodes.values() if n.namespace)}"
                            f" nodes (each /24 of it holds 250); give a larger addressing.mgmt",
                            None, "addressing.mgmt")
                return
            planned.mgmt_interface = "mgmt0"
            planned.mgmt_address = address
            k = self._port()
            isolated = planned.kind != "monitor"
            self.veths.append(Veth(VethEnd(planned.namespace or "", "mgmt0"),
                                   VethEnd(self.mgmt, f"m{k}", shard.bridge, isolated=isolated)))


def build_plan(topology: Topology, registry: KindRegistry | None = None) -> NetworkPlan:
    """Plan the lab; raises TopologyError for address clashes and realm mistakes."""
    return _Builder(topology, registry or default_registry()).build()
