"""The preflight that refuses a lab this machine cannot hold, with the reason."""

from __future__ import annotations

import pytest

from testbed.backends.capacity import HostFacts, check, problems
from testbed.errors import BackendError
from testbed.plan.build import build_plan
from testbed.topology.loader import load_topology

ROOMY = HostFacts(mem_available_mb=22_000, nofile_hard=1_048_576, neighbour_limit=65_536,
                  pid_max=4_194_304)


def test_a_5000_node_lab_fits_a_24_gb_machine() -> None:
    assert problems(namespaces=5_200, peers=2_600, facts=ROOMY) == []


def test_too_little_memory_is_refused_with_the_figures() -> None:
    tight = HostFacts(2_000, 1_048_576, 65_536, 4_194_304)
    [why] = problems(namespaces=5_200, peers=2_600, facts=tight)
    assert why.startswith("memory:") and "2,000 MB available" in why and "5,200" in why


def test_each_host_limit_is_named() -> None:
    small = HostFacts(22_000, nofile_hard=4_096, neighbour_limit=1_024, pid_max=8_192)
    found = problems(namespaces=10_000, peers=5_000, facts=small)
    # 5,000 peers as they start need more than a 24 GB machine has, too
    assert [p.split(":")[0] for p in found] == ["memory", "open files",
                                                "neighbour (ARP) table", "processes"]
    assert "gc_thresh3" in found[2] and "ulimit -Hn" in found[1]


def test_check_refuses_a_plan_before_anything_is_built(tmp_path) -> None:
    topo = tmp_path / "t.yaml"
    topo.write_text("name: cap\nnodes:\n  core: {kind: router}\n  h{n}:\n    count: 300\n"
                    "    kind: host\n    uplink: {to: core}\n")
    plan = build_plan(load_topology(topo))
    with pytest.raises(BackendError, match=r"(?s)cannot hold lab .cap.*neighbour"):
        check(plan, HostFacts(22_000, 1_048_576, neighbour_limit=512, pid_max=4_194_304))
    check(plan, ROOMY)  # fits: no error
