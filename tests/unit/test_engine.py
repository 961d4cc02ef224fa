"""The scenario engine and the outcome metrics without a kernel: the real engine, Lab and
runtime on the fake backend (real labs are in tests/integration/test_outage_scenarios.py)."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from testbed.backends.fake import FakeBackend
from testbed.lab.lab import Lab
from testbed.metrics.exporter import read_net_dev
from testbed.metrics.outcome import Trigger, needing_login, summarize
from testbed.scenario.actions import Event, RunContext, default_actions, schedule
from testbed.scenario.engine import Engine, StepLog
from testbed.scenario.model import Selector, StepSpec
from testbed.topology.loader import load_topology_text


class FakeExporter:
    def __init__(self) -> None:
        self.down: set[str] = set()

    def node_down(self, node: str) -> None:
        self.down.add(node)

    def node_up(self, node: str, restarted: bool = True) -> None:
        self.down.discard(node)

    def event(self, action: str, step: int) -> None:
        pass


class FakePrometheus:
    def __init__(self, true_after: float) -> None:
        self.since = time.monotonic()
        self.true_after = true_after

    def scalar(self, promql: str) -> float | None:
        return 1.0 if time.monotonic() - self.since >= self.true_after else None


LAB = """
name: eng
nodes:
  core: {kind: router}
  a: {kind: host, uplink: {to: core}}
  b: {kind: host, uplink: {to: core}}
  ok: {kind: host, uplink: {to: core}}
"""


def fake_lab(tmp_path: Path, text: str = LAB, backend: FakeBackend | None = None) -> Lab:
    """A lab on the fake backend: the real Lab, runtime and journal, no kernel."""
    path = tmp_path / "lab.yaml"
    path.write_text(text)
    return Lab.up(path, backend=backend or FakeBackend(), state_dir=tmp_path / "state")


def _engine(events: list[Event], tmp_path: Path, prometheus: Any = None
            ) -> tuple[Engine, FakeBackend, FakeExporter]:
    """The real engine acting on a real LabRuntime whose backend is the fake."""
    backend, exporter = FakeBackend(), FakeExporter()
    lab = fake_lab(tmp_path, backend=backend)
    context = RunContext(lab.runtime, exporter, prometheus)
    return Engine(events, context, StepLog(tmp_path / "steps.jsonl")), backend, exporter


def _links(backend: FakeBackend, began: float, direction: str) -> dict[str, float]:
    """When each node's links went down (or up), seconds after `began`."""
    return {text.split()[1]: at - began for at, text in backend.timeline
            if text.startswith("set_links") and text.endswith(direction)}


def _log(tmp_path: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in (tmp_path / "steps.jsonl").read_text().splitlines()]


def test_events_run_at_their_time_and_are_logged_with_lateness(tmp_path: Path) -> None:
    events = [Event(0.2, "host_down", ("a", "b"), {"mode": "hard"}, 0),
              Event(0.5, "host_up", ("a", "b"), {}, 0),
              Event(0.5, "mark", (), {"text": "back"}, 1)]
    engine, backend, exporter = _engine(events, tmp_path)
    began = time.monotonic()
    assert engine.run(0.6)
    downs, ups = _links(backend, began, "down"), _links(backend, began, "up")
    assert set(downs) == {"a", "b"} and all(0.19 <= t < 0.4 for t in downs.values())
    assert set(ups) == {"a", "b"} and all(0.49 <= t < 0.7 for t in ups.values())
    assert sorted(c for c in backend.calls if c.startswith("start_services")) == [
        "start_services a", "start_services b"]  # a reboot starts the services again
    assert exporter.down == set()
    log = _log(tmp_path)
    assert len(log) == 5  # one line per node and per timeline event
    assert all(abs(e["lateness"]) < 0.1 for e in log)
    assert [e["text"] for e in log if e["action"] == "mark"] == ["back"]


def test_a_failing_node_is_logged_and_the_run_goes_on(tmp_path: Path) -> None:
    events = [Event(0.0, "host_down", ("broken", "ok"), {}, 0),
              Event(0.1, "host_up", ("ok",), {}, 0)]
    engine, backend, _ = _engine(events, tmp_path)
    assert engine.run(0.2)
    outcomes = {(e["action"], e["node"]): e["outcome"] for e in _log(tmp_path)}
    assert outcomes[("host_down", "broken")] == "error: no node 'broken' in lab 'eng'"
    acted = [c for c in backend.calls[2:] if c.startswith("set_links")]  # after the build
    assert acted == ["set_links ok down", "set_links ok up"]


def test_wait_until_holds_the_rest_of_the_timeline_back(tmp_path: Path) -> None:
    events = [Event(0.0, "wait_until", (), {"query": "up", "timeout": 5}, 0),
              Event(0.1, "host_down", ("a",), {}, 1)]
    engine, backend, _ = _engine(events, tmp_path, FakePrometheus(true_after=1.0))
    began = time.monotonic()
    assert engine.run(0.2)
    assert list(_links(backend, began, "down")) == ["a"]
    assert 1.0 <= _links(backend, began, "down")["a"] < 1.6  # held ~1 s, then 0.1 s later
    down = next(e for e in _log(tmp_path) if e["action"] == "host_down")
    assert down["planned"] == pytest.approx(0.1) and down["due"] >= 1.0


def test_stop_ends_the_run_before_later_events(tmp_path: Path) -> None:
    events = [Event(5.0, "host_down", ("a",), {}, 0)]
    engine, backend, _ = _engine(events, tmp_path)
    threading.Timer(0.2, engine.stop).start()
    assert engine.run(6.0) is False
    assert backend.calls == ["preflight", "build"]  # the lab was built, then nothing


def test_every_scheduled_action_has_an_executor() -> None:
    topology = load_topology_text("""
name: t
nodes:
  r: {kind: router}
  h{n}: {count: 2, kind: peer, uplink: {to: r}}
""")
    made: set[str] = set()
    for action in default_actions().actions:
        step = StepSpec(action=action, at=0.0, select=Selector(kind="peer"), duration=1.0,
                        to=Selector(kind="peer"),
                        link={"bandwidth": "1Mbit"}, policy="fixed", query="1",
                        text="x", playbook="patch-tuesday.yml")
        made |= {e.action for e in schedule([step], topology, 1)}
    registry = default_actions()
    assert made <= set(registry.node_events) | set(registry.timeline_events)


def test_summary_finds_the_dip_and_the_recovery() -> None:
    online = [(float(t), 1.0 if t < 10 else 0.05 if t < 40 else 0.96) for t in range(60)]
    series = {"online_fraction": online,
              "login_server_requests_per_s": [(float(t), 10.0) for t in range(60)],
              "supernodes": [(float(t), 4.0 if t < 10 else 1.0) for t in range(60)]}
    summary = summarize(series, Trigger(10.0, 20.0), needed_login=25, complete=True)
    assert summary["min_online_fraction"] == 0.05
    assert summary["time_to_90_s"] == 30.0 and summary["time_to_95_s"] == 30.0
    assert summary["amplification"] == pytest.approx(490 / 25, rel=0.01)
    assert summary["supernodes_low"] == 1.0


def test_summary_says_never_when_the_network_stays_down() -> None:
    online = [(float(t), 1.0 if t < 10 else 0.02) for t in range(60)]
    summary = summarize({"online_fraction": online}, Trigger(10.0, 20.0), 30, False)
    assert summary["time_to_95_s"] is None and summary["complete"] is False
    assert summary["final_online_fraction"] == 0.02


def test_needing_login_counts_offline_and_missing_peers() -> None:
    steady = [(float(t), 1.0) for t in range(20)]
    dipped = [(float(t), 0.0 if t == 12 else 1.0) for t in range(20)]
    gap = [(float(t), 1.0) for t in range(20) if not 11 <= t <= 15]
    assert needing_login({"a": steady, "b": dipped, "c": gap, "d": []}, 10, 20, 1) == 3


def test_kernel_counters_are_read_per_interface() -> None:
    header = ("Inter-|   Receive  |  Transmit\n"
              " face |bytes packets errs drop fifo frame compressed multicast|bytes packets "
              "errs drop fifo colls carrier compressed\n")
    text = (header + "    lo: 100 1 0 0 0 0 0 0 100 1 0 0 0 0 0 0\n"
            "  eth0: 5000 40 0 3 0 0 0 0 7000 50 0 2 0 0 0 0\n")
    assert read_net_dev(text) == {"eth0": {"rx_bytes": 5000, "rx_packets": 40,
                                           "rx_dropped": 3, "tx_bytes": 7000,
                                           "tx_packets": 50, "tx_dropped": 2}}
