"""A 2,000-node lab on this machine: built, every node's management address reached from
the mgmt namespace at once (as Prometheus scrapes), torn down with nothing left.

One mgmt bridge for all nodes stopped at 1,023 ports ("Exchange full") and lost ARP
replies past ~1,000 ports; the sharded mgmt network (plan/mgmt.py) must hold both."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from testbed.lab.lab import Lab
from testbed.plan.build import build_plan
from testbed.topology.loader import load_topology
from tests.conftest import REPO, unique_lab_name
from tests.integration.mgmt_sweep import sweep

pytestmark = [pytest.mark.root, pytest.mark.slow]

HOSTS = 2000


def lab_namespaces(lab: str) -> list[str]:
    return [p.name for p in Path("/run/netns").glob(f"tb-{lab}-*")]


def test_a_2000_node_lab_is_scrapeable_everywhere_and_leaves_nothing(
        tmp_path: Path, state_root: Path) -> None:
    sys.path.insert(0, str(REPO / "benchmarks"))
    from tree_topology import tree_yaml

    name = unique_lab_name("big")
    path = tmp_path / "tree.yaml"
    path.write_text(tree_yaml(HOSTS, name=name))
    topology = load_topology(path)
    plan = build_plan(topology)
    assert len(plan.mgmt_shards) == 8  # 2,000 nodes in bridges of <= 250 ports
    began = time.monotonic()
    lab = Lab.up(topology, state_dir=state_root)
    try:
        built = time.monotonic() - began
        assert len(lab_namespaces(name)) == HOSTS + 2  # + fabric, mgmt
        addresses = [(n.mgmt_address or "").split("/")[0] for n in plan.nodes.values()
                     if n.namespace]
        assert len(addresses) == HOSTS
        reached = sweep(plan.mgmt_namespace, addresses)
        assert reached["failed"] == {}, f"unreachable mgmt addresses: {reached['failed']}"
        assert reached["answered"] == HOSTS
        # the mgmt network joins nothing: a node cannot reach another node's mgmt address
        first, last = addresses[0], addresses[-1]
        probe = subprocess.run(["ip", "netns", "exec", plan.nodes["h1"].namespace or "",
                                "ping", "-c", "1", "-W", "1", last], capture_output=True)
        assert probe.returncode != 0, f"h1 ({first}) reached {last} over mgmt"
        # the data network works end to end across the tree
        far = plan.nodes[f"h{HOSTS}"].primary_address() or ""
        ping = subprocess.run(["ip", "netns", "exec", plan.nodes["h1"].namespace or "",
                               "ping", "-c", "1", "-W", "3", far], capture_output=True)
        assert ping.returncode == 0, ping.stderr
    finally:
        lab.down()
    assert lab_namespaces(name) == []
    assert not lab.state.exists()
    print(f"built {HOSTS} nodes in {built:.1f}s")
