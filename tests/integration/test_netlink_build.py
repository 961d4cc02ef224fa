"""The per-node build stage speaks rtnetlink itself (backends/netlink/): what it leaves in
a node must be what `ip -batch` / `tc -batch` made from the same plan."""

from __future__ import annotations

import re
import subprocess

import pytest

from testbed.links.shaping import tc_lines

pytestmark = pytest.mark.root


def show(*argv: str) -> str:
    return subprocess.run(argv, capture_output=True, text=True, check=True).stdout


def shaping_made_by_tc(shaping) -> tuple[str, str]:  # noqa: ANN001
    """qdiscs and classes `tc -batch` installs for `shaping` on a veth of its own."""
    script = ("ip link add name x type veth peer name y && tc -batch - && "
              "tc -d qdisc show dev x && echo --- && tc -d class show dev x")
    lines = "\n".join(tc_lines("x", shaping, have_netem=False)) + "\n"
    out = subprocess.run(["unshare", "--net", "sh", "-c", script], input=lines,
                         capture_output=True, text=True, check=True).stdout
    qdiscs, classes = out.split("---\n")
    return qdiscs, classes


def normal(text: str, device: str) -> list[str]:
    return sorted(re.sub(rf"\bdev {device}\b", "dev D", re.sub(r"refcnt \d+", "", line))
                  .strip() for line in text.splitlines() if line.strip())


def test_a_node_built_by_netlink_matches_what_ip_and_tc_make(make_lab) -> None:
    lab = make_lab("""
nodes:
  core: {kind: router}
  home: {kind: host, uplink: {to: core, up: 700kbit, down: 12Mbit, queue: 40}}
  fast: {kind: host, uplink: {to: core, bandwidth: 5Gbit}}
  dark: {kind: host, uplink: {to: core, bandwidth: 1Mbit}, held_back: true}
""")
    for node in ("home", "fast"):
        shaping = lab.plan.nodes[node].interfaces[0].shaping
        qdiscs, classes = shaping_made_by_tc(shaping)
        ns = lab.ns(node)
        assert normal(show("tc", "-n", ns, "-d", "qdisc", "show", "dev", "eth0"), "eth0") \
            == normal(qdiscs, "x"), node
        assert normal(show("tc", "-n", ns, "-d", "class", "show", "dev", "eth0"), "eth0") \
            == normal(classes, "x"), node
    home = lab.plan.nodes["home"]
    addresses = show("ip", "-n", lab.ns("home"), "-4", "-o", "addr")
    assert f"inet {home.interfaces[0].address} " in addresses
    assert f"inet {home.mgmt_address} " in addresses
    routes = show("ip", "-n", lab.ns("home"), "route")
    assert f"default via {home.routes[0].via} dev eth0" in routes
    # the round trip a user would do: across the shaped links, and the mgmt network
    assert lab.exec("home", "ping", "-c", "1", "-W", "2", lab.addr("fast")).returncode == 0
    mgmt = (home.mgmt_address or "").split("/")[0]
    assert subprocess.run(["ip", "netns", "exec", lab.plan.mgmt_namespace, "ping", "-c", "1",
                           "-W", "2", mgmt], capture_output=True).returncode == 0
    # a held-back node has its addresses but no link up and no route until add_nodes
    dark = show("ip", "-n", lab.ns("dark"), "-o", "link", "show", "eth0")
    assert "state DOWN" in dark and "default" not in show("ip", "-n", lab.ns("dark"), "route")
