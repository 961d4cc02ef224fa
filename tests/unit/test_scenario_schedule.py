"""Scenario files resolve into a seeded, reproducible schedule; bad steps fail early."""

from __future__ import annotations

from pathlib import Path

import pytest

from testbed.errors import ScenarioError
from testbed.scenario.loader import load_scenario
from testbed.topology.loader import load_topology

REPO = Path(__file__).resolve().parents[2]


def _topology():  # noqa: ANN202
    return load_topology(REPO / "topologies" / "skype-2007.yaml")


def test_restart_wave_reboots_the_chosen_share_within_the_window_then_brings_them_back(
) -> None:
    topology = _topology()
    scenario = load_scenario(REPO / "scenarios" / "skype-2007.yaml", topology)
    downs = [e for e in scenario.events if e.action == "host_down"]
    ups = {e.nodes[0]: e.time for e in scenario.events if e.action == "host_up"}
    supernodes = [n for n in topology.nodes.values() if n.group == "supernode-pc"]
    homes = [n for n in topology.nodes.values() if n.group == "home-pc"]
    down_nodes = {e.nodes[0] for e in downs}
    assert len(down_nodes & {n.name for n in supernodes}) == round(0.4 * len(supernodes))
    assert len(down_nodes & {n.name for n in homes}) == round(0.4 * len(homes))
    assert len(downs) == len(down_nodes)  # nobody reboots twice
    for event in downs:
        assert 10 <= event.time <= 40  # within the 30 s window
        assert 20 <= ups[event.nodes[0]] - event.time <= 40
        assert event.params["mode"] == "hard"
    marks = [e for e in scenario.events if e.action == "mark"]
    assert marks[-1].time == max(ups.values())  # "after: 0s" follows the wave's end


def test_same_seed_same_schedule_other_seed_other_schedule() -> None:
    topology = _topology()
    path = REPO / "scenarios" / "skype-2007.yaml"
    first = load_scenario(path, topology).events
    assert load_scenario(path, topology).events == first
    assert load_scenario(path, topology, seed=7).events != first


@pytest.mark.parametrize(("step", "message", "line"), [
    ("  - {at: 1s, action: reboot_all}", "unknown action 'reboot_all'; known: add_nodes", 3),
    ("  - {at: 1s, action: crash, select: {kind: toaster}}", "matches no node", 3),
    ("  - {at: 1s, action: crash}", "crash needs select:", 3),
    ("  - {action: mark, text: x}", "the first step needs at:", 3),
    ("  - {at: soon, action: mark}", "expected a duration", 3),
])
def test_bad_steps_are_reported_with_file_and_line(tmp_path: Path, step: str, message: str,
                                                   line: int) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(f"name: bad\nsteps:\n{step}\n")
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path, _topology())
    text = str(caught.value)
    assert message in text
    assert f"bad.yaml:{line}:" in text
