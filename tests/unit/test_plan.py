"""Planning small topologies: addresses per realm, routes, switch segments, link shaping."""

from __future__ import annotations

import ipaddress
import subprocess
import sys
import textwrap
from pathlib import Path

from testbed.plan.build import build_plan
from testbed.plan.model import Interface, NetworkPlan, Route, VethEnd
from testbed.topology.loader import load_topology, load_topology_text

REPO = Path(__file__).resolve().parents[2]
DEFAULT = REPO / "topologies" / "skype-2007.yaml"

# core <- isp <- {home1-nat <- home1, home2-nat <- home2, office switch <- h1, h2}
CHAIN = """\
name: chain
nodes:
  core: {kind: router}
  isp: {kind: router, uplink: {to: core, bandwidth: 1Gbit}}
  home{n}-nat:
    count: 2
    kind: nat
    uplink: {to: isp, up: 512kbit, down: 8Mbit}
  home{n}:
    count: 2
    kind: host
    uplink: {to: "home{n}-nat"}
  office: {kind: switch, uplink: {to: isp}}
  h{n}:
    count: 2
    kind: host
    uplink: {to: office, up: 1Mbit, down: 2Mbit}
"""


def plan_of(text: str) -> NetworkPlan:
    return build_plan(load_topology_text(textwrap.dedent(text), "t.yaml"))


def iface(plan: NetworkPlan, node: str, peer: str) -> Interface:
    matches = [i for i in plan.nodes[node].interfaces if i.peer == peer]
    assert len(matches) == 1, (node, peer, plan.nodes[node].interfaces)
    return matches[0]


def addr(plan: NetworkPlan, node: str, peer: str) -> str:
    address = iface(plan, node, peer).address
    assert address is not None
    return address


def bare(cidr: str) -> str:
    return cidr.split("/")[0]


def veth_end(plan: NetworkPlan, namespace: str, name: str) -> VethEnd:
    ends = [e for v in plan.veths for e in (v.a, v.b) if (e.namespace, e.name) == (namespace, name)]
    assert len(ends) == 1, (namespace, name)
    return ends[0]


# --- addresses ------------------------------------------------------------------------------

def test_addresses_are_deterministic() -> None:
    def addresses(plan: NetworkPlan) -> dict[str, list[tuple[str, str | None]]]:
        return {n: [(i.name, i.address) for i in p.interfaces] for n, p in plan.nodes.items()}

    first, second = plan_of(CHAIN), plan_of(CHAIN)
    assert addresses(first) == addresses(second)
    assert [p.mgmt_address for p in first.nodes.values()] == \
        [p.mgmt_address for p in second.nodes.values()]


def test_addresses_are_unique_within_each_realm() -> None:
    plan = plan_of(CHAIN)
    by_realm: dict[str, list[str]] = {}
    for seg in plan.segments:
        for node, name in seg.members:
            address = next(i.address for i in plan.nodes[node].interfaces if i.name == name)
            assert address is not None
            by_realm.setdefault(seg.realm, []).append(bare(address))
    assert sorted(by_realm) == ["nat:home1-nat", "nat:home2-nat", "public"]
    for realm, addresses in by_realm.items():
        assert len(addresses) == len(set(addresses)), realm
    assert len(by_realm["public"]) == 2 + 2 + 2 + 3  # isp-core, 2 nat uplinks, office (3)


def test_every_home_behind_its_own_nat_gets_192_168_1() -> None:
    plan = plan_of(CHAIN)
    for n in (1, 2):
        assert plan.nodes[f"home{n}"].realm == f"nat:home{n}-nat"
        assert plan.nodes[f"home{n}-nat"].realm == "public"
        assert plan.nodes[f"home{n}-nat"].inner_realm == f"nat:home{n}-nat"
        assert addr(plan, f"home{n}-nat", f"home{n}") == "192.168.1.1/24"  # the gateway first
        assert addr(plan, f"home{n}", f"home{n}-nat") == "192.168.1.2/24"


def test_public_point_to_point_links_get_198_18_slash_30s() -> None:
    plan = plan_of(CHAIN)
    public_pool = ipaddress.ip_network("198.18.0.0/15")
    p2p = [s for s in plan.segments if s.realm == "public" and s.bridge is None]
    assert len(p2p) == 3  # isp-core and the two nat uplinks
    for seg in p2p:
        net = ipaddress.ip_network(seg.subnet or "")
        assert net.prefixlen == 30
        assert net.subnet_of(public_pool)  # type: ignore[arg-type]
    nat_side = ipaddress.ip_interface(addr(plan, "home1-nat", "isp"))
    isp_side = ipaddress.ip_interface(addr(plan, "isp", "home1-nat"))
    assert nat_side.network == isp_side.network
    assert str(isp_side.ip) == str(next(nat_side.network.hosts()))  # gateway gets .1 of the /30


def test_default_routes_point_at_the_uplink_gateway() -> None:
    plan = plan_of(CHAIN)
    expected = {
        "home1": bare(addr(plan, "home1-nat", "home1")),
        "home1-nat": bare(addr(plan, "isp", "home1-nat")),
        "isp": bare(addr(plan, "core", "isp")),
        "h1": bare(addr(plan, "isp", "office")),
    }
    for node, via in expected.items():
        defaults = [r for r in plan.nodes[node].routes if r.destination == "default"]
        assert defaults == [Route("default", via)], node
    assert not [r for r in plan.nodes["core"].routes if r.destination == "default"]
    assert plan.nodes["home1"].uplink_interface == "eth0"


def test_core_routes_to_public_subnets_below_the_isp_but_not_to_private_ones() -> None:
    plan = plan_of(CHAIN)
    via_isp = bare(addr(plan, "isp", "core"))
    below_isp = {s.subnet for s in plan.segments
                 if s.realm == "public" and s.gateway == "isp"}
    assert len(below_isp) == 3  # two nat uplinks and the office switch
    core_routes = plan.nodes["core"].routes
    assert sorted(core_routes, key=str) == sorted(
        (Route(subnet or "", via_isp) for subnet in below_isp), key=str)
    assert not any(r.destination.startswith("192.168.") for n in plan.nodes.values()
                   for r in n.routes if r.destination != "default")
    # the isp reaches the nat uplinks directly: no routes but its default
    assert plan.nodes["isp"].routes == [Route("default", bare(addr(plan, "core", "isp")))]


def test_router_chain_core_learns_subnets_two_routers_down() -> None:
    plan = plan_of("""\
        name: deep
        nodes:
          core: {kind: router}
          isp: {kind: router, uplink: {to: core}}
          pop: {kind: router, uplink: {to: isp}}
          nat: {kind: nat, uplink: {to: pop}}
          pc: {kind: host, uplink: {to: nat}}
        """)
    nat_uplink = ipaddress.ip_interface(addr(plan, "nat", "pop")).network
    assert Route(str(nat_uplink), bare(addr(plan, "isp", "core"))) in plan.nodes["core"].routes
    assert Route(str(nat_uplink), bare(addr(plan, "pop", "isp"))) in plan.nodes["isp"].routes
    private = ipaddress.ip_interface(addr(plan, "pc", "nat")).network
    assert str(private) == "192.168.1.0/24"
    assert all(r.destination != str(private) for n in plan.nodes.values() for r in n.routes)


def test_pinned_addresses_are_honoured_and_avoided_by_allocation() -> None:
    plan = plan_of("""\
        name: pins
        nodes:
          core: {kind: router}
          a: {kind: host, uplink: {to: core, ip: 198.18.0.2/30, peer_ip: 198.18.0.1/30}}
          b: {kind: host, uplink: {to: core}}
          nat: {kind: nat, lan_pool: 10.20.0.0/16, uplink: {to: core}}
          pc: {kind: host, uplink: {to: nat, ip: 10.20.5.9/24}}
        """)
    assert addr(plan, "a", "core") == "198.18.0.2/30"
    assert addr(plan, "core", "a") == "198.18.0.1/30"
    assert ipaddress.ip_interface(addr(plan, "b", "core")).network != \
        ipaddress.ip_network("198.18.0.0/30")
    assert addr(plan, "pc", "nat") == "10.20.5.9/24"
    assert addr(plan, "nat", "pc") == "10.20.5.1/24"  # the gateway takes the first free one
    assert plan.nodes["pc"].routes == [Route("default", "10.20.5.1")]


def test_lan_pool_sets_the_private_realm_of_that_nat() -> None:
    plan = plan_of("""\
        name: pool
        nodes:
          core: {kind: router}
          nat: {kind: nat, lan_pool: 10.20.0.0/16, uplink: {to: core}}
          pc: {kind: host, uplink: {to: nat}}
        """)
    assert addr(plan, "pc", "nat") == "10.20.1.2/24"


# --- switch segments ------------------------------------------------------------------------

def test_switch_segment_shares_one_subnet_with_the_router_as_gateway() -> None:
    plan = plan_of(CHAIN)
    seg = next(s for s in plan.segments if s.bridge is not None)
    assert seg.gateway == "isp"
    assert sorted(n for n, _ in seg.members) == ["h1", "h2", "isp"]
    net = ipaddress.ip_network(seg.subnet or "")
    assert net.prefixlen == 29  # 3 members + network + broadcast
    router = ipaddress.ip_interface(addr(plan, "isp", "office"))
    assert router.network == net
    assert router.ip == next(net.hosts())
    for host in ("h1", "h2"):
        assert ipaddress.ip_interface(addr(plan, host, "office")).network == net
        assert plan.nodes[host].routes == [Route("default", str(router.ip))]
    assert plan.nodes["office"].namespace is None
    assert plan.bridges == ["br0"]
    for host in ("h1", "h2", "isp"):
        port = next(v for v in plan.veths if v.a.name == iface(plan, host, "office").name
                    and v.a.namespace == plan.nodes[host].namespace)
        assert (port.b.namespace, port.b.bridge) == (plan.fabric_namespace, "br0")


# --- shaping --------------------------------------------------------------------------------

def test_up_rate_is_on_the_declaring_nodes_end_and_down_on_the_other() -> None:
    plan = plan_of(CHAIN)
    nat, isp = plan.nodes["home1-nat"], plan.nodes["isp"]
    nat_if, isp_if = iface(plan, "home1-nat", "isp"), iface(plan, "isp", "home1-nat")
    assert nat_if.shaping.rate == 512_000  # upload leaves the home
    assert isp_if.shaping.rate == 8_000_000  # download leaves the isp toward the home
    assert veth_end(plan, nat.namespace or "", nat_if.name).shaping.rate == 512_000
    assert veth_end(plan, isp.namespace or "", isp_if.name).shaping.rate == 8_000_000


def test_up_rate_toward_a_switch_is_on_the_hosts_end_down_on_the_bridge_port() -> None:
    plan = plan_of(CHAIN)
    h1 = plan.nodes["h1"]
    veth = next(v for v in plan.veths if v.a.namespace == h1.namespace and v.a.name == "eth0")
    assert veth.a.shaping.rate == 1_000_000
    assert veth.b.bridge == "br0"
    assert veth.b.shaping.rate == 2_000_000


def test_up_and_down_on_a_link_declared_by_the_switch_side() -> None:
    plan = plan_of("""\
        name: sw
        nodes:
          core: {kind: router}
          lan: {kind: switch, uplink: {to: core, up: 1Mbit, down: 3Mbit}}
        """)
    core = plan.nodes["core"]
    veth = next(v for v in plan.veths if v.a.namespace == core.namespace and v.a.name == "eth0")
    assert veth.b.shaping.rate == 1_000_000  # from the switch toward core
    assert veth.a.shaping.rate == 3_000_000  # from core toward the switch


def test_symmetric_bandwidth_delay_and_loss_on_both_ends() -> None:
    plan = plan_of("""\
        name: sym
        nodes:
          core: {kind: router}
          pc: {kind: host, uplink: {to: core, bandwidth: 10Mbit, delay: 20ms, jitter: 5ms,
                                    loss: 1%, queue: 50}}
        """)
    for node, peer in (("pc", "core"), ("core", "pc")):
        shaping = iface(plan, node, peer).shaping
        assert (shaping.rate, shaping.delay, shaping.jitter, shaping.loss, shaping.queue) == \
            (10_000_000, 0.02, 0.005, 0.01, 50)


# --- the default topology -------------------------------------------------------------------

def test_default_topology_plans_without_problems() -> None:
    topology = load_topology(DEFAULT)
    plan = build_plan(topology)
    assert len(topology.nodes) == 343  # 1 core, 1 login, 10 sn, 160 x (nat + pc), corp 11
    assert plan.nodes["home001"].realm == "nat:home001-nat"
    assert addr(plan, "home001", "home001-nat") == "192.168.1.2/24"
    assert addr(plan, "home160", "home160-nat") == "192.168.1.2/24"
    assert ipaddress.ip_interface(addr(plan, "corp01", "corp-lan")).network.subnet_of(
        ipaddress.ip_network("10.20.0.0/16"))  # type: ignore[arg-type]
    assert plan.nodes["home002-nat"].node.nat is not None
    assert plan.nodes["home003-nat"].node.nat.type == "full-cone"  # type: ignore[union-attr]


def test_set_homes_changes_the_node_count() -> None:
    topology = load_topology(DEFAULT, {"homes": "5"})
    build_plan(topology)
    homes = sorted(n for n in topology.nodes if n.startswith("home") and "-" not in n)
    assert homes == ["home001", "home002", "home003", "home004", "home005"]
    assert len(topology.nodes) == 343 - 2 * 155
    assert len(topology.nodes_of_kind("nat")) == 5 + 1


def test_validate_cli_with_set_homes_reports_the_smaller_lab() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "testbed", "validate", str(DEFAULT), "--set", "homes=5"],
        capture_output=True, text=True, cwd=REPO, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "lab 'skype2007': 33 nodes (1 login, 6 nat, 23 peer, 1 proxy, 1 router, " \
           "1 switch), 32 links" in result.stdout


def test_ovs_switches_are_planned_as_open_vswitch_bridges() -> None:
    plan = plan_of("""\
name: mixed
nodes:
  core: {kind: router}
  lan: {kind: switch, uplink: {to: core}}
  fast: {kind: switch, switch: {type: ovs}, uplink: {to: core}}
  kern: {kind: switch, switch: {type: ovs, datapath: system}, uplink: {to: core}}
  a: {kind: host, uplink: {to: lan}}
  b: {kind: host, uplink: {to: fast}}
""")
    assert len(plan.bridges) == 3
    assert sorted(plan.ovs_bridges.values()) == ["netdev", "system"]
    linux = [b for b in plan.bridges if b not in plan.ovs_bridges]
    assert len(linux) == 1  # lan stays a Linux bridge
    ports = {end.bridge for veth in plan.veths for end in (veth.a, veth.b) if end.bridge}
    assert set(plan.ovs_bridges) <= ports
