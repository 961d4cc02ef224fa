"""The `call` scenario action: seeded caller/callee pairs, early errors, the executor's
reading of the peer's answer, and calls never holding back the restarts meanwhile.
(Real calls on a real lab: tests/integration/test_capture_scenario.py.)"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from testbed.errors import ScenarioError
from testbed.scenario.actions import ActionError, Event, RunContext, schedule
from testbed.scenario.actions.call import call
from testbed.scenario.engine import Engine, StepLog
from testbed.scenario.loader import load_scenario
from testbed.scenario.model import Selector, StepSpec
from testbed.topology.loader import load_topology_text

TOPOLOGY = """
name: calls
groups:
  pcs: {}
nodes:
  core: {kind: router}
  login: {kind: login, uplink: {to: core}}
  sn: {kind: peer, labels: {sn_capable: true}, uplink: {to: core}}
  pc{n}: {count: 6, kind: peer, group: pcs, uplink: {to: core}}
  own: {kind: peer, command: [sleep, "1000"], uplink: {to: core}}
"""


def _calls(step: StepSpec, seed: int = 1) -> list[Event]:
    return schedule([step], load_topology_text(TOPOLOGY), seed)


def test_each_caller_calls_someone_else_for_the_duration_chosen_by_the_seed() -> None:
    step = StepSpec(action="call", at=20.0, select=Selector(group="pcs", count=3),
                    to=Selector(group="pcs"), duration=8.0)
    events = _calls(step)
    assert len(events) == 3 and all(e.time == 20.0 for e in events)
    for event in events:
        (caller,) = event.nodes
        assert event.params["to"] != caller and event.params["to"].startswith("pc")
        assert event.params["seconds"] == 8.0
    assert _calls(step) == events
    assert any(_calls(step, seed) != events for seed in range(2, 6))
    follow = StepSpec(action="mark", after=0.0, text="calls over")
    marked = schedule([step, follow], load_topology_text(TOPOLOGY), 1)
    assert marked[-1].action == "mark" and marked[-1].time == 28.0  # after the calls end


@pytest.mark.parametrize(("step", "message"), [
    (StepSpec(action="call", at=0.0, select=Selector(names=["pc1"])), "call needs to:"),
    (StepSpec(action="call", at=0.0, select=Selector(names=["pc1"]),
              to=Selector(group="nobody")), "to: matches no node"),
    (StepSpec(action="call", at=0.0, select=Selector(names=["pc1"]),
              to=Selector(names=["pc1"])), "offers pc1 nobody to call but itself"),
    (StepSpec(action="call", at=0.0, select=Selector(names=["pc1"]),
              to=Selector(names=["login"])), "login is not a reference overlay peer"),
    (StepSpec(action="call", at=0.0, select=Selector(names=["own"]),
              to=Selector(names=["pc1"])), "own is not a reference overlay peer"),
])
def test_calls_that_cannot_happen_are_refused_before_the_run(step: StepSpec,
                                                             message: str) -> None:
    with pytest.raises(ActionError, match=message):
        _calls(step)


def test_a_bad_call_step_is_reported_at_its_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("name: bad\nsteps:\n  - {at: 1s, action: mark, text: x}\n"
                    "  - {at: 2s, action: call, select: {names: [pc1]}}\n")
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path, load_topology_text(TOPOLOGY))
    assert f"{path}:4" in str(caught.value) and "call needs to:" in str(caught.value)


class AnsweringRuntime:
    """A runtime whose peers answer /call after `seconds` (the call's length)."""

    def __init__(self, answer: dict[str, Any]) -> None:
        self.answer = answer
        self.asked: list[tuple[str, str, float]] = []
        self.downs: list[float] = []
        self.lock = threading.Lock()

    def control(self, name: str, path: str, timeout: float = 5.0) -> str:
        with self.lock:
            self.asked.append((name, path, timeout))
        seconds = float(path.split("seconds=")[1])
        time.sleep(seconds)
        return json.dumps(self.answer)

    def host_down(self, node: str, mode: str) -> int:
        with self.lock:
            self.downs.append(time.monotonic())
        return 1


class Exporter:
    def node_down(self, node: str) -> None:
        pass

    def event(self, action: str, step: int) -> None:
        pass


def _context(runtime: AnsweringRuntime) -> RunContext:
    return RunContext(runtime, Exporter())  # type: ignore[arg-type]


@pytest.mark.parametrize(("answer", "outcome"), [
    ({"ok": True, "path": "relayed", "sent": 200, "received": 190},
     "relayed call to pc2: 190 media packets received, 200 sent"),
    ({"ok": False, "reason": "not-found"}, "call to pc2 failed: not-found"),
    ({"ok": False, "path": "direct", "sent": 200, "received": 0},
     "call to pc2 failed: no media got through"),
])
def test_the_call_outcome_says_how_the_media_went(answer: dict[str, Any],
                                                 outcome: str) -> None:
    runtime = AnsweringRuntime(answer)
    assert call(_context(runtime), "pc1", {"to": "pc2", "seconds": 0.0}) == outcome
    (name, path, timeout), = runtime.asked
    assert (name, path) == ("pc1", "/call?to=pc2&seconds=0") and timeout >= 30


def test_calls_in_progress_never_delay_the_restarts_scheduled_meanwhile(
        tmp_path: Path) -> None:
    calls = [Event(0.0, "call", (f"pc{i}",), {"to": "sn", "seconds": 1.5}, 0)
             for i in range(40)]  # more calls than the engine has workers
    restart = Event(0.3, "host_down", ("sn",), {"mode": "hard"}, 1)
    runtime = AnsweringRuntime({"ok": True, "path": "direct", "sent": 1, "received": 1})
    engine = Engine([*calls, restart], _context(runtime), StepLog(tmp_path / "steps.jsonl"),
                    workers=8)
    began = time.monotonic()
    assert engine.run(0.4)
    (down,) = runtime.downs
    assert down - began < 1.2  # on time, though 40 calls of 1.5 s were under way
    log = [json.loads(line) for line in (tmp_path / "steps.jsonl").read_text().splitlines()]
    assert sum(1 for e in log if e["action"] == "call") == 40  # the run waited for them
    assert time.monotonic() - began >= 1.5
