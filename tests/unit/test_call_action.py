"""The `call` scenario action: seeded caller/callee pairs, early errors, the executor's
reading of the peer's answer, and calls never holding back the restarts meanwhile.
(Real calls on a real lab: tests/integration/test_capture_scenario.py.)"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from testbed.backends.fake import FakeBackend
from testbed.errors import ScenarioError
from testbed.scenario.actions import ActionError, Event, RunContext, schedule
from testbed.scenario.actions.call import call
from testbed.scenario.engine import Engine, StepLog
from testbed.scenario.loader import load_scenario
from testbed.scenario.model import Selector, StepSpec
from testbed.topology.loader import load_topology_text
from tests.unit.test_engine import fake_lab

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


class Answering:
    """The peers' control API as the fake backend's answer to curl: every /call is
    answered after `seconds` (the call's length) with `answer`."""

    def __init__(self, answer: dict[str, Any]) -> None:
        self.answer = answer
        self.asked: list[tuple[str, float]] = []  # (URL, curl's -m timeout)
        self.lock = threading.Lock()

    def __call__(self, namespace: str, argv: Sequence[str]) -> str:
        url = argv[-1]
        with self.lock:
            self.asked.append((url, float(argv[argv.index("-m") + 1])))
        time.sleep(float(url.split("seconds=")[1]))
        return json.dumps(self.answer)


class Exporter:
    def node_down(self, node: str) -> None:
        pass

    def node_up(self, node: str, restarted: bool = True) -> None:
        pass

    def event(self, action: str, step: int) -> None:
        pass


def _context(tmp_path: Path, answering: Answering, pcs: int = 6
             ) -> tuple[RunContext, FakeBackend]:
    """The real runtime of a lab on the fake backend, whose peers answer as told."""
    backend = FakeBackend(answer=answering)
    lab = fake_lab(tmp_path, TOPOLOGY.replace("count: 6", f"count: {pcs}"), backend)
    return RunContext(lab.runtime, Exporter()), backend


@pytest.mark.parametrize(("answer", "outcome"), [
    ({"ok": True, "path": "relayed", "sent": 200, "received": 190},
     "relayed call to pc2: 190 media packets received, 200 sent"),
    ({"ok": False, "reason": "not-found"}, "call to pc2 failed: not-found"),
    ({"ok": False, "path": "direct", "sent": 200, "received": 0},
     "call to pc2 failed: no media got through"),
])
def test_the_call_outcome_says_how_the_media_went(answer: dict[str, Any], outcome: str,
                                                 tmp_path: Path) -> None:
    answering = Answering(answer)
    context, backend = _context(tmp_path, answering)
    assert call(context, "pc1", {"to": "pc2", "seconds": 0.0}) == outcome
    (url, timeout), = answering.asked
    pc1 = context.runtime.node("pc1").mgmt_address or ""
    assert url == f"http://{pc1.split('/')[0]}:9100/call?to=pc2&seconds=0" and timeout >= 30
    assert backend.commands[-1][0] == "tb-calls--mgmt"  # asked over the management network


def test_calls_in_progress_never_delay_the_restarts_scheduled_meanwhile(
        tmp_path: Path) -> None:
    calls = [Event(0.0, "call", (f"pc{i}",), {"to": "sn", "seconds": 1.5}, 0)
             for i in range(1, 41)]  # more calls than the engine has workers
    restart = Event(0.3, "host_down", ("sn",), {"mode": "hard"}, 1)
    context, backend = _context(tmp_path, Answering({"ok": True, "path": "direct", "sent": 1,
                                                     "received": 1}), pcs=40)
    engine = Engine([*calls, restart], context, StepLog(tmp_path / "steps.jsonl"), workers=8)
    began = time.monotonic()
    assert engine.run(0.4)
    (down,) = [at for at, text in backend.timeline if text == "set_links sn down"]
    assert down - began < 1.2  # on time, though 40 calls of 1.5 s were under way
    log = [json.loads(line) for line in (tmp_path / "steps.jsonl").read_text().splitlines()]
    outcomes = [e["outcome"] for e in log if e["action"] == "call"]
    assert outcomes == ["direct call to sn: 1 media packets received, 1 sent"] * 40  # waited
    assert time.monotonic() - began >= 1.5
