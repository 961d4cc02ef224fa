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
    ("  - {at: 1s, action: set_link, select: {group: home-pc}, link: {bandwith: 1Mbit}}",
     "link: unknown key 'bandwith'; set_link takes: bandwidth, up, down, loss", 3),
    ("  - {at: 1s, action: set_link, select: {group: home-pc}, link: {loss: 150%}}",
     "link: loss: expected", 3),
    ("  - {at: 1s, action: set_link, select: {group: home-pc}, link: {jitter: 5ms}}",
     "jitter: needs delay:", 3),
    ("  - {at: 1s, action: set_link, select: {group: home-pc}, link: {delay: slow}}",
     "link: delay: expected", 3),
    ("  - {at: 1s, action: set_link, select: {group: home-pc}}", "set_link needs link:", 3),
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


def _wave_with_trace(tmp_path: Path, trace: str, extra: str = "") -> Path:
    scenario = tmp_path / "wave.yaml"
    scenario.write_text("name: wave\nsteps:\n"
                        "  - at: 10s\n    action: restart_wave\n"
                        "    select: {group: home-pc}\n"
                        f"    trace: {trace}\n    window: 60s\n{extra}")
    return scenario


def test_a_trace_file_shapes_the_restart_wave(tmp_path: Path) -> None:
    """The example trace has half its reboots in the first 120 s of 2311 s: scaled onto a
    60 s window, about half the hosts go down in its first ~3 s, the rest spread out."""
    (tmp_path / "traces").mkdir()
    example = REPO / "scenarios" / "traces" / "patch-day-example.csv"
    (tmp_path / "traces" / "t.csv").write_text(example.read_text())
    topology = _topology()
    scenario = load_scenario(_wave_with_trace(tmp_path, "traces/t.csv"), topology)
    downs = [e.time - 10 for e in scenario.events if e.action == "host_down"]
    assert len(downs) == 160
    assert all(0 <= t <= 60 for t in downs)
    early = sum(1 for t in downs if t <= 60 * 120 / 2311)
    assert 0.35 <= early / len(downs) <= 0.65, early  # the burst
    assert max(downs) > 30  # and the tail
    again = load_scenario(_wave_with_trace(tmp_path, "traces/t.csv"), topology)
    assert again.events == scenario.events


def test_trace_lines_are_read_with_header_comments_and_any_origin(tmp_path: Path) -> None:
    from testbed.scenario.traces import read_trace
    path = tmp_path / "t.csv"
    path.write_text("time,host\n# boot log\n1700000030,pc2\n\n1700000010,pc1 # first\n"
                    "1700000050,pc3\n")
    trace = read_trace(path)
    assert trace.times == (0.0, 20.0, 40.0)


@pytest.mark.parametrize(("content", "extra", "message"), [
    ("10\n20\nsoon\n", "", "t.csv:3: 'soon' is not a time in seconds"),
    ("# nothing\n", "", "the trace holds no times"),
    ("10\ninf\n", "", "t.csv:2: 'inf' is not a finite time"),
    ("10\n20\n", "    spread: uniform\n", "give spread: or trace:, not both"),
    (None, "", "cannot read the trace"),
])
def test_bad_traces_are_reported_with_the_step_and_the_trace_line(
        tmp_path: Path, content: str | None, extra: str, message: str) -> None:
    if content is not None:
        (tmp_path / "t.csv").write_text(content)
    scenario = _wave_with_trace(tmp_path, "t.csv", extra)
    with pytest.raises(ScenarioError) as caught:
        load_scenario(scenario, _topology())
    assert f"{scenario}:3" in str(caught.value) and message in str(caught.value)


def test_set_link_takes_delay_jitter_loss_and_bandwidth(tmp_path: Path) -> None:
    path = tmp_path / "shape.yaml"
    path.write_text("name: shape\nsteps:\n  - at: 1s\n    action: set_link\n"
                    "    select: {group: home-pc, count: 2}\n"
                    "    link: {bandwidth: 256kbit, loss: 2%, queue: 20, delay: 80ms, "
                    "jitter: 10ms}\n    duration: 30s\n")
    scenario = load_scenario(path, _topology())
    assert [e.action for e in scenario.events] == ["set_link", "reset_link"]
    assert scenario.events[0].params["link"]["delay"] == "80ms"
    assert scenario.where(0) == f"{path}:3"
