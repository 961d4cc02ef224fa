"""The run_playbook step without a lab: scheduling and file checks, how ansible-runner's
events reach the step log, that a failed task stops the run with the task and host named,
and a real ansible-runner run on this machine's localhost (no namespaces, no root)."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import pytest

from testbed.errors import ScenarioError, StepFailed
from testbed.scenario.actions import ActionRegistry, Event, RunContext, default_actions
from testbed.scenario.actions import mark as mark_action
from testbed.scenario.actions import run_playbook as run_playbook_action
from testbed.scenario.engine import Engine, StepLog
from testbed.scenario.loader import PLAYBOOKS_DIR, load_scenario
from testbed.scenario.playbook_step import run_playbook, task_entry
from testbed.topology.loader import load_topology_text
from tests.unit.test_engine import FakeExporter, fake_lab

TOPOLOGY = """
name: pb
nodes:
  core: {kind: router}
  win1: {kind: host, labels: {os: windows}, uplink: {to: core}}
  win2: {kind: host, labels: {os: windows}, uplink: {to: core}}
  tux: {kind: host, labels: {os: linux}, uplink: {to: core}}
"""


def _scenario(tmp_path: Path, step: str) -> Path:
    path = tmp_path / "scenario.yaml"
    path.write_text(f"name: pb\nsteps:\n{step}\n")
    return path


def test_a_playbook_by_name_is_the_projects_and_select_limits_it(tmp_path: Path) -> None:
    topology = load_topology_text(TOPOLOGY, "pb.yaml")
    path = _scenario(tmp_path, "  - {at: 5s, action: run_playbook, playbook: patch-tuesday.yml,"
                               " select: {labels: {os: windows}}, extra_vars: {down_time: 3},"
                               " timeout: 2m}\n  - {after: 1s, action: mark, text: done}")
    scenario = load_scenario(path, topology)
    first, mark = scenario.events
    assert first.action == "run_playbook" and first.time == 5.0
    assert first.params["playbook"] == str(PLAYBOOKS_DIR / "patch-tuesday.yml")
    assert sorted(first.params["limit"]) == ["win1", "win2"]
    assert first.params["extra_vars"] == {"down_time": 3}
    assert first.params["timeout"] == 120.0
    assert mark.time == 6.0  # `after:` counts from its start; the engine adds how long it held


def test_a_playbook_next_to_the_scenario_wins(tmp_path: Path) -> None:
    (tmp_path / "mine.yml").write_text("- hosts: all\n  tasks: []\n")
    path = _scenario(tmp_path, "  - {at: 0s, action: run_playbook, playbook: mine.yml}")
    event = load_scenario(path, load_topology_text(TOPOLOGY, "pb.yaml")).events[0]
    assert event.params["playbook"] == str(tmp_path / "mine.yml")
    assert "limit" not in event.params  # no select: the playbook's own hosts


@pytest.mark.parametrize(("step", "message"), [
    ("  - {at: 0s, action: run_playbook, playbook: patch-wednesday.yml}",
     "no playbook 'patch-wednesday.yml' next to the scenario or in"),
    ("  - {at: 0s, action: run_playbook}", "run_playbook needs playbook:"),
    ("  - {at: 0s, action: run_playbook, playbook: patch-tuesday.yml, select: {kind: nat}}",
     "matches no node"),
])
def test_bad_playbook_steps_fail_before_a_lab_exists(tmp_path: Path, step: str,
                                                     message: str) -> None:
    with pytest.raises(ScenarioError) as caught:
        load_scenario(_scenario(tmp_path, step), load_topology_text(TOPOLOGY, "pb.yaml"))
    assert message in str(caught.value)
    assert "scenario.yaml:3: steps[0]" in str(caught.value)
    if "patch-wednesday" in step:
        assert "patch-tuesday.yml" in str(caught.value)  # what there is instead


def test_runner_events_become_step_log_entries() -> None:
    def event(name: str, **data: Any) -> dict[str, Any]:
        return {"event": name, "event_data": data}

    assert task_entry(event("playbook_on_play_start", play="Patch")) == {"event": "play",
                                                                        "play": "Patch"}
    assert task_entry(event("runner_on_ok", host="win1", task="Install",
                            res={"changed": True}))["event"] == "changed"
    assert task_entry(event("runner_on_ok", host="win1", task="Check",
                            res={"changed": False}))["event"] == "ok"
    failed = task_entry(event("runner_on_failed", host="win2", task="Reboot",
                              res={"msg": "non-zero return code", "rc": 2}))
    assert failed == {"event": "failed", "node": "win2", "task": "Reboot",
                      "message": "non-zero return code"}
    assert task_entry(event("runner_on_failed", host="w", task="t", ignore_errors=True,
                            res={}))["event"] == "failed (ignored)"
    assert task_entry(event("runner_on_unreachable", host="w", task="t",
                            res={"msg": "namespace gone"}))["message"] == "namespace gone"
    assert task_entry(event("verbose")) is None
    assert task_entry(event("runner_on_start", host="w", task="t")) is None


def _engine(events: list[Event], tmp_path: Path, actions: ActionRegistry | None = None
            ) -> Engine:
    context = RunContext(fake_lab(tmp_path).runtime, FakeExporter())
    return Engine(events, context, StepLog(tmp_path / "steps.jsonl"),
                  actions=actions or default_actions())


def _with_playbook(executor: Any) -> ActionRegistry:
    """The actions with run_playbook's executor replaced (no Ansible in unit tests)."""
    playbook = dataclasses.replace(run_playbook_action.ACTION,
                                   timeline_events={"run_playbook": executor})
    return ActionRegistry([playbook, mark_action.ACTION])


def _log(tmp_path: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in (tmp_path / "steps.jsonl").read_text().splitlines()]


def test_a_playbook_holds_the_timeline_and_its_tasks_reach_the_step_log(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def fake(ctx: RunContext, params: dict[str, Any]) -> str:
        time.sleep(0.4)
        ctx.note({"action": "playbook_task", "event": "changed", "node": "win1",
                  "task": "Install the patch"})
        return "2 hosts: ok=2"

    engine = _engine([Event(0.1, "run_playbook", (), {"playbook": "x.yml"}, 0),
                      Event(0.2, "mark", (), {"text": "after"}, 1)], tmp_path,
                     _with_playbook(fake))
    assert engine.run(0.3)
    log = _log(tmp_path)
    task = next(e for e in log if e["action"] == "playbook_task")
    assert task["step"] == 0 and task["node"] == "win1" and task["actual"] >= 0.4
    step = next(e for e in log if e["action"] == "run_playbook")
    assert step["outcome"] == "2 hosts: ok=2"
    mark = next(e for e in log if e["action"] == "mark")
    assert mark["actual"] >= 0.2 + 0.4 - 0.05  # due after the playbook's ~0.4 s hold
    assert engine.held >= 0.35


def test_a_failed_playbook_stops_the_run_and_is_logged(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def failing(ctx: RunContext, params: dict[str, Any]) -> str:
        raise StepFailed("run_playbook x.yml: task 'Reboot' failed on win2: boom")

    engine = _engine([Event(0.0, "run_playbook", (), {"playbook": "x.yml"}, 0),
                      Event(0.1, "mark", (), {"text": "never"}, 1)], tmp_path,
                     _with_playbook(failing))
    with pytest.raises(StepFailed, match="'Reboot' failed on win2"):
        engine.run(5.0)
    log = _log(tmp_path)
    assert [e["action"] for e in log] == ["run_playbook"]
    assert log[0]["outcome"].startswith("failed: run_playbook x.yml: task 'Reboot'")


PLAYBOOK = """\
- name: A play on this machine
  hosts: all
  gather_facts: false
  tasks:
    - name: Say hello
      ansible.builtin.command: "echo {{ greeting }}"
      changed_when: false
    - name: Fail on purpose
      ansible.builtin.command: /bin/false
      when: fail_it | bool
"""


@pytest.mark.parametrize("fail", [False, True])
def test_ansible_runner_really_runs_it(tmp_path: Path, fail: bool) -> None:
    lab_dir = tmp_path / "lab"
    lab_dir.mkdir()
    (lab_dir / "inventory.yml").write_text(
        "all:\n  hosts:\n    here:\n      ansible_connection: local\n"
        "      ansible_python_interpreter: /usr/bin/python3\n")
    (tmp_path / "play.yml").write_text(PLAYBOOK)
    notes: list[dict[str, Any]] = []
    params = {"playbook": str(tmp_path / "play.yml"),
              "extra_vars": {"greeting": "hi", "fail_it": fail}}
    work = tmp_path / "work"
    if not fail:
        recap = run_playbook(params, lab_dir, tmp_path, work, notes.append, lambda: False)
        assert recap.startswith("1 hosts: ok=1") and "failed=0" in recap
        assert [(n["task"], n["event"]) for n in notes if "task" in n] == [
            ("Say hello", "ok"), ("Fail on purpose", "skipped")]
    else:
        with pytest.raises(StepFailed) as caught:
            run_playbook(params, lab_dir, tmp_path, work, notes.append, lambda: False)
        assert "task 'Fail on purpose' failed on here" in str(caught.value)
        assert str(work / "artifacts") in str(caught.value)
    assert list((work / "artifacts").glob("*/stdout"))  # Ansible's output is kept


def test_a_lab_without_inventory_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(StepFailed, match="the lab has no inventory"):
        run_playbook({"playbook": "p.yml"}, tmp_path, tmp_path, tmp_path / "w",
                     lambda e: None, lambda: False)


class Journal:
    """A node's processes as the watcher sees them: alive in its cache, and in the
    journal on each reload (a list of answers, one per look)."""

    def __init__(self, cached: bool, reloads: list[int]) -> None:
        self.cached = cached
        self.reloads = reloads

    def live_processes(self, name: str) -> list[int]:
        return [1] if self.cached else []

    def reload(self, name: str) -> int:
        return self.reloads.pop(0)


class Markers:
    def __init__(self, down: bool) -> None:
        self.down = down

    def is_down(self, node: str) -> bool:
        return self.down


@pytest.mark.parametrize(("cached", "reloads", "marked", "crashed"), [
    (True, [], False, False),  # running
    (False, [1], False, False),  # restarted by another command: new pids in the journal
    (False, [0], True, False),  # rebooting right now (marked before anything was killed)
    (False, [0, 1], False, False),  # the reboot ended between the two looks
    (False, [0, 0], False, True),  # dead, and no reboot explains it
])
def test_a_reboot_by_a_playbook_is_never_taken_for_a_crash(
        cached: bool, reloads: list[int], marked: bool, crashed: bool) -> None:
    from testbed.scenario.run.watcher import died_on_its_own

    journal = Journal(cached, list(reloads))
    assert died_on_its_own("home001", journal, Markers(marked)) is crashed
    assert journal.reloads == []  # looked exactly as often as described
