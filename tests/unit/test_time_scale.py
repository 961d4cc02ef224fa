"""overlay.time_scale is a change of clock: durations x s, rates / s, everything else as is."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from testbed.nodes.overlay import peer_config
from testbed.peer.clock import DURATIONS, RATES, UNSCALED, LabClock
from testbed.peer.policies import POLICIES, RetryPolicy
from testbed.plan.build import build_plan
from testbed.topology.loader import load_topology_text
from testbed.topology.model import LoginCapacity, OverlaySettings, SupernodeCapacity

TOPOLOGY = """
name: clock
overlay:
  time_scale: {scale}
  login: {{rate: 4, queue: 50, when_full: busy, retry_after: 10s}}
  supernode: {{max_children: 30, joins_per_second: 0.5, min_uptime: 300s, overload: drop-role,
              threshold: 2, sustain: 10s, retry_after: 7s, min_bandwidth: 1Mbit}}
nodes:
  core: {{kind: router}}
  login: {{kind: login, uplink: {{to: core}}}}
  sn1: {{kind: peer, labels: {{sn_capable: true}}, uplink: {{to: core, bandwidth: 10Mbit}}}}
  pc1: {{kind: peer, uplink: {{to: core, up: 512kbit, down: 8Mbit}}}}
"""


def _configs(scale: float):  # noqa: ANN202
    plan = build_plan(load_topology_text(TOPOLOGY.format(scale=scale), "clock.yaml"))
    assert plan.overlay is not None
    return plan, {name: peer_config(plan.nodes[name], plan, plan.overlay)
                  for name in ("login", "sn1")}


def test_every_overlay_setting_says_how_it_scales() -> None:
    fields = {f"login.{f.name}" for f in dataclasses.fields(LoginCapacity)}
    fields |= {f"supernode.{f.name}" for f in dataclasses.fields(SupernodeCapacity)}
    fields |= {f"policy.{f.name}" for f in dataclasses.fields(RetryPolicy)}
    fields |= {f"overlay.{f.name}" for f in dataclasses.fields(OverlaySettings)}
    classified = set(DURATIONS) | set(RATES) | set(UNSCALED)
    assert fields - classified == set(), "say in testbed/peer/clock.py how these scale"
    assert classified - fields == set(), "clock.py names settings that no longer exist"
    assert not set(DURATIONS) & set(RATES)


def test_docs_list_what_scales_and_what_does_not() -> None:
    text = (Path(__file__).parents[2] / "docs" / "topology.md").read_text()
    section = text.split("### Time scale", 1)[1]
    for name in (*DURATIONS, *RATES):
        shown = name.split(".", 1)[1] if name.startswith("policy.") else name
        assert f"`{shown}`" in section, name
    assert "link" in section.lower() and "not scaled" in section


@pytest.mark.parametrize("scale", [0.2, 0.05, 2.0])
def test_login_and_supernode_settings_follow_the_clock(scale: float) -> None:
    _, real = _configs(1.0)
    _, fast = _configs(scale)
    assert fast["login"].login["rate"] == pytest.approx(real["login"].login["rate"] / scale)
    assert fast["login"].login["retry_after"] == pytest.approx(
        real["login"].login["retry_after"] * scale)
    assert fast["login"].login["queue"] == real["login"].login["queue"] == 50
    sn_real, sn_fast = real["sn1"].supernode_settings(), fast["sn1"].supernode_settings()
    assert sn_fast.joins_per_second == pytest.approx(sn_real.joins_per_second / scale)
    assert sn_fast.overload.retry_after == pytest.approx(sn_real.overload.retry_after * scale)
    assert sn_fast.overload.sustain == pytest.approx(sn_real.overload.sustain * scale)
    assert fast["sn1"].min_uptime == pytest.approx(real["sn1"].min_uptime * scale)
    assert (sn_fast.max_children, sn_fast.overload.threshold, sn_fast.overload.behaviour) == (
        sn_real.max_children, sn_real.overload.threshold, sn_real.overload.behaviour)
    # real-unit values at scale 1, as written in the topology
    assert (real["login"].login["rate"], sn_real.joins_per_second, real["sn1"].min_uptime) == (
        4, 0.5, 300)


@pytest.mark.parametrize("scale", [0.2, 3.0])
def test_load_relative_to_capacity_does_not_depend_on_the_scale(scale: float) -> None:
    """Retries per second x seconds per login: the dimensionless product stays."""
    _, real = _configs(1.0)
    _, fast = _configs(scale)
    for name, policy in POLICIES.items():
        before = real["login"].login["rate"] * policy.with_time_scale(1.0).round_wait
        after = fast["login"].login["rate"] * policy.with_time_scale(scale).round_wait
        assert after == pytest.approx(before), name


def test_every_policy_timer_is_scaled_and_nothing_else() -> None:
    policy = POLICIES["fixed"]
    fast = policy.with_time_scale(0.1)
    for f in dataclasses.fields(RetryPolicy):
        before, after = getattr(policy, f.name), getattr(fast, f.name)
        if f"policy.{f.name}" in DURATIONS:
            assert after == pytest.approx(before * 0.1), f.name
        else:
            assert after == before, f.name


def test_links_stay_physical() -> None:
    slow_plan, _ = _configs(1.0)
    fast_plan, _ = _configs(0.1)
    rates = [[(i.name, i.shaping.rate) for i in n.interfaces]
             for plan in (slow_plan, fast_plan) for n in (plan.nodes["pc1"],)]
    assert rates[0] == rates[1]


def test_the_clock_refuses_a_non_positive_scale() -> None:
    with pytest.raises(ValueError, match="positive"):
        LabClock(0)
    assert LabClock(0.2).real_seconds(60) == pytest.approx(300)


SCENARIO = """\
name: real-clock
clock: {clock}
duration: 850s
outcome: {{judge_after: 300s, settle: 100s}}
steps:
  - {{at: 0s, action: wait_until, query: "vector(1)", timeout: 120s}}
  - at: 50s
    action: restart_wave
    select: {{kind: peer, fraction: 0.5}}
    window: 150s
    down_time: {{kind: uniform, min: 100s, max: 200s}}
  - {{after: 10s, action: mark, text: back}}
"""


@pytest.mark.parametrize(("clock", "factor"), [("real", 0.2), ("lab", 1.0)])
def test_a_real_clock_scenario_runs_on_the_lab_clock(tmp_path: Path, clock: str,
                                                     factor: float) -> None:
    from testbed.scenario.loader import load_scenario
    from testbed.topology.loader import load_topology

    topology = load_topology(Path(__file__).parents[2] / "topologies" / "skype-2007.yaml",
                             {"homes": "4", "supernodes": "2", "corp_hosts": "1"})
    path = tmp_path / "s.yaml"
    path.write_text(SCENARIO.format(clock=clock))
    scenario = load_scenario(path, topology)
    assert scenario.duration == pytest.approx(850 * factor)
    assert scenario.outcome.judge_after == pytest.approx(300 * factor)
    assert scenario.outcome.settle == pytest.approx(100 * factor)
    wave = scenario.steps[1]
    assert (wave.at, wave.window) == pytest.approx((50 * factor, 150 * factor))
    assert wave.down_time is not None
    assert (wave.down_time.min, wave.down_time.max) == pytest.approx(
        (100 * factor, 200 * factor))
    assert scenario.steps[0].timeout == 120  # how long the lab may take: not scaled
    downs = [e.time for e in scenario.events if e.action == "host_down"]
    assert min(downs) >= 50 * factor and max(downs) <= 200 * factor
