"""The management network in shards: no bridge past 250 ports, each shard its own /24."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from testbed.errors import TopologyError
from testbed.plan.build import build_plan
from testbed.topology.loader import load_topology


def plan_of(tmp_path: Path, hosts: int, mgmt: str | None = None):  # noqa: ANN201
    pool = f"addressing: {{mgmt: {mgmt}}}\n" if mgmt else ""
    path = tmp_path / "t.yaml"
    path.write_text(f"name: sh\n{pool}nodes:\n  core: {{kind: router}}\n  h{{n}}:\n"
                    f"    count: {hosts}\n    kind: host\n    uplink: {{to: core}}\n")
    return build_plan(load_topology(path))


def test_600_nodes_spread_over_three_bridges_of_at_most_250_ports(tmp_path: Path) -> None:
    plan = plan_of(tmp_path, 599)  # + core = 600 namespaced nodes
    assert [s.bridge for s in plan.mgmt_shards] == ["mbr0", "mbr1", "mbr2"]
    ports = Counter(v.b.bridge for v in plan.veths if v.b.namespace == plan.mgmt_namespace)
    assert ports == {"mbr0": 250, "mbr1": 250, "mbr2": 100}
    assert all(v.b.isolated for v in plan.veths if v.b.namespace == plan.mgmt_namespace)
    # each shard is its own /24, the mgmt namespace its gateway; Prometheus listens on
    # the first shard's gateway
    assert [s.address for s in plan.mgmt_shards] == [
        "100.127.0.1/24", "100.127.1.1/24", "100.127.2.1/24"]
    assert plan.mgmt_bridge_address == "100.127.0.1/24"
    addresses = [n.mgmt_address for n in plan.nodes.values() if n.namespace]
    assert len(set(addresses)) == 600
    assert addresses[250] == "100.127.1.2/24"


def test_a_pool_too_small_for_the_lab_is_a_topology_error(tmp_path: Path) -> None:
    with pytest.raises(TopologyError, match="addressing.mgmt|too small"):
        plan_of(tmp_path, 100, mgmt="100.127.0.0/26")
    assert len(plan_of(tmp_path, 40, mgmt="100.127.0.0/26").mgmt_shards) == 1
