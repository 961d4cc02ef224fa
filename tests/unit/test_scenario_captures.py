"""`captures:` and `expect:` in scenario files, `capture:` on topology links: what a run
will capture, and every mistake reported at file:line before a lab is built."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from testbed.capture.declared import place, planned_nodes
from testbed.errors import ScenarioError, TopologyError
from testbed.plan.build import build_plan
from testbed.scenario.loader import load_scenario
from testbed.scenario.run import RunOptions, prepare
from testbed.topology.loader import load_topology, load_topology_text
from tests.conftest import REPO, run_cli

TOPOLOGY = """\
name: cap
nodes:
  core: {kind: router}
  lan: {kind: switch, uplink: {to: core, capture: {filter: arp, name: lan-side}}}
  a: {kind: host, uplink: {to: core, capture: {filter: icmp, max_seconds: 30s}}}
  b: {kind: host, uplink: {to: lan}}
links:
  - {between: [a, b], capture: {snaplen: 128}}
"""

STEPS = """\
steps:
  - {at: 1s, action: mark, text: go}
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_topology_link_captures_are_placed_on_the_declaring_end() -> None:
    topology = load_topology_text(TOPOLOGY)
    plan = build_plan(topology)
    placed, problems = place(topology, plan, [])
    assert problems == []
    by_name = {p.name: p for p in placed}
    assert set(by_name) == {"a-eth0", "lan-side", "a-eth1"}
    assert by_name["a-eth0"].spec.filter == "icmp" and by_name["a-eth0"].spec.max_seconds == 30
    assert by_name["a-eth0"].where == "<text>:5"
    # a switch has no namespace: its uplink is captured on the router's end
    assert by_name["lan-side"].spec.node == "core" and by_name["lan-side"].spec.filter == "arp"
    assert by_name["a-eth1"].spec.snaplen == 128
    assert all(p.namespace.startswith("tb-cap-") for p in placed)


def test_a_misspelt_capture_key_in_a_topology_names_file_and_line() -> None:
    with pytest.raises(TopologyError) as exc:
        load_topology_text(TOPOLOGY.replace("filter: icmp", "fliter: icmp"))
    assert "<text>:5: nodes.a.uplink.capture.fliter: unknown key 'fliter' (did you mean " \
           "'filter'?)" in str(exc.value)


def test_scenario_captures_and_expectations_are_loaded(tmp_path: Path) -> None:
    topology = load_topology(REPO / "topologies" / "skype-2007.yaml")
    scenario = load_scenario(REPO / "scenarios" / "capture-check.yaml", topology)
    assert [c.spec.node for c in scenario.captures] == ["login", "home001-nat", "home002",
                                                       "corp01"]
    assert scenario.captures[0].line == 19 and scenario.captures[3].spec.snaplen == 128
    assert [e.check for e in scenario.expectations] == [
        "packets", "peak_rate", "no_packets", "via", "no_packets", "packets", "packets",
        "link_rate", "promql", "promql"]
    assert scenario.expectations[0].where.endswith("capture-check.yaml:56")


def test_the_ci_scenario_places_its_captures_on_the_small_lab(tmp_path: Path) -> None:
    prepared = prepare(RunOptions(topology=REPO / "topologies" / "skype-2007.yaml",
                                  scenario=REPO / "scenarios" / "capture-check.yaml",
                                  results=tmp_path))
    assert [(c.name, c.spec.node, c.interface) for c in prepared.captures] == [
        ("login", "login", "eth0"), ("home1-adsl", "home001-nat", "eth0"),
        ("home2-pc", "home002", "eth0"), ("corp01-eth0", "corp01", "eth0")]
    assert len(planned_nodes(prepared.plan)) == len(prepared.topology.nodes)


@pytest.mark.parametrize(("body", "message"), [
    ("captures:\n  - {filter: icmp}\n",
     "scenario.yaml:2: captures[0]: node: is required"),
    ("captures:\n  - {node: logn}\n",
     "scenario.yaml:2: captures[0].node: 'logn' is not a node of the topology (did you "
     "mean 'login'?)"),
    ("captures:\n  - {node: login, snaplen: 10}\n",
     "scenario.yaml:2: captures[0].snaplen: 10 is out of range"),
    ("expect:\n  - {check: packets, max: 5, colour: red}\n",
     "scenario.yaml:2: expect[0].colour: unknown key 'colour'"),
    ("expect:\n  - {check: peak_rate}\n",
     "scenario.yaml:2: expect[0]: check peak_rate needs min:"),
    ("expect: 5\n", "scenario.yaml:1: expect: expected a list"),
])
def test_bad_captures_and_expectations_fail_at_file_and_line(
        tmp_path: Path, body: str, message: str) -> None:
    path = write(tmp_path, "scenario.yaml", body + STEPS)
    with pytest.raises(ScenarioError) as exc:
        load_scenario(path, load_topology(REPO / "topologies" / "skype-2007.yaml"))
    assert message in str(exc.value)


@pytest.mark.parametrize(("body", "message"), [
    # a selector that matches nothing: found before the lab is built, not after the run
    ("captures:\n  - {node: login}\nexpect:\n  - {check: no_packets, from: hoem001}\n",
     "scenario.yaml:4: no_packets from hoem001: from: 'hoem001' matches no node of the run's "
     "lab"),
    ("captures:\n  - {node: login, name: x}\nexpect:\n  - {check: packets, capture: y, "
     "max: 1}\n", "scenario.yaml:4: packets: capture: 'y' is not in captures/index.json "
     "(x (login:eth0))"),
    ("expect:\n  - {check: packets, max: 1}\n",
     "scenario.yaml:2: packets: no capture is declared"),
    ("captures:\n  - {node: login, interface: eth9}\n",
     "scenario.yaml:2: captures[0]: login has no interface 'eth9' (it has: eth0)"),
    ("captures:\n  - {node: internet, name: i}\n  - {node: login, name: i}\n",
     "scenario.yaml:3: capture name 'i' is used twice (also at "),
    ("captures:\n  - {node: corp-lan}\n",
     "captures[0]: corp-lan is a switch: it has no namespace to capture in"),
])
def test_run_check_only_finds_what_does_not_fit_the_lab(
        tmp_path: Path, body: str, message: str) -> None:
    path = write(tmp_path, "scenario.yaml", body + STEPS)
    result = run_cli("run", str(REPO / "topologies" / "skype-2007.yaml"), str(path),
                     "--set", "homes=2", "--check-only")
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stderr


def test_run_check_only_lists_captures_and_expectations() -> None:
    result = run_cli("run", "topologies/skype-2007.yaml", "scenarios/capture-check.yaml",
                     "--check-only")
    assert result.returncode == 0, result.stderr
    assert "capture login: login:eth0 'tcp port 443'  (scenarios/capture-check.yaml:19)" \
        in result.stdout
    assert "10 expectations, checked after the run" in result.stdout
    help_text = run_cli("run", "--help").stdout
    assert "captures/" in help_text and "junit.xml" in help_text
    assert "an expectation did not pass" in help_text
