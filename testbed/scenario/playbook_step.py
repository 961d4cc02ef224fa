"""The `run_playbook` step: an Ansible playbook against the running lab, through
ansible-runner, with the lab's generated inventory and the project's testbed_netns
connection plugin.

Each task's outcome on each host (ok, changed, failed, unreachable) goes to the run's
step log as it happens; ansible-runner's own artifacts (the playbook's full output and
events) are kept in the run's `ansible/` directory. A failed task stops the scenario:
the step raises StepFailed naming the task, the host and Ansible's message, and the run
ends cleanly with its results kept. Ctrl-C or SIGTERM cancels the playbook.

Reboots a playbook does through `testbed reboot` are seen by the run's watcher (the lab's
"down" markers), so they count as restarts, never as crashes.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from testbed.errors import StepFailed
from testbed.inventory import INVENTORY_FILE, connection_plugin_dir

# What the step log keeps of ansible-runner's events: per host and task.
TASK_EVENTS = {
    "runner_on_ok": "ok",
    "runner_on_failed": "failed",
    "runner_on_unreachable": "unreachable",
    "runner_on_skipped": "skipped",
    "runner_item_on_failed": "failed",
}


def task_entry(event: Mapping[str, Any]) -> dict[str, Any] | None:
    """One ansible-runner event -> a step-log entry, or None for events not about a task
    on a host (play start, stats, verbose output)."""
    data = event.get("event_data") or {}
    name = event.get("event")
    if name == "playbook_on_play_start":
        return {"event": "play", "play": data.get("play", "")}
    outcome = TASK_EVENTS.get(str(name))
    if outcome is None or not data.get("host"):
        return None
    result = data.get("res") or {}
    if outcome == "ok" and result.get("changed"):
        outcome = "changed"
    if outcome == "failed" and data.get("ignore_errors"):
        outcome = "failed (ignored)"
    entry: dict[str, Any] = {"event": outcome, "node": data["host"],
                             "task": data.get("task", "")}
    if outcome in ("failed", "unreachable"):
        entry["message"] = failure_message(result)
    return entry


def failure_message(result: Mapping[str, Any]) -> str:
    """Ansible's reason for a failure, in one line: msg, else stderr, else rc."""
    for key in ("msg", "stderr", "reason"):
        text = str(result.get(key) or "").strip()
        if text:
            return " ".join(text.split())[:500]
    return f"rc {result['rc']}" if "rc" in result else "no message"


def environment(state_root: Path) -> dict[str, str]:
    """What ansible-playbook needs to act on a lab, wherever it is run from (PATH: this
    Python's venv first, for ansible-playbook and the `testbed` the playbooks call)."""
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    return {
        "ANSIBLE_CONNECTION_PLUGINS": str(connection_plugin_dir()),
        "ANSIBLE_HOST_KEY_CHECKING": "False",
        "ANSIBLE_RETRY_FILES_ENABLED": "False",
        "ANSIBLE_INVENTORY_UNPARSED_FAILED": "True",
        "ANSIBLE_NOCOLOR": "1",
        # a batch of hosts patched and rebooted at once, as the playbook's serial asks
        "ANSIBLE_FORKS": os.environ.get("ANSIBLE_FORKS", "50"),
        "TESTBED_STATE_DIR": str(state_root),  # for `testbed reboot` in the playbook
        "PATH": path,
    }


def run_playbook(params: Mapping[str, Any], lab_dir: Path, state_root: Path,
                 work_dir: Path, note: Callable[[dict[str, Any]], None],
                 cancelled: Callable[[], bool]) -> str:
    """Run the playbook to its end; returns the recap for the step log, raises
    StepFailed when a task failed, a host was unreachable or the playbook timed out."""
    import ansible_runner

    playbook = Path(str(params["playbook"]))
    inventory = lab_dir / INVENTORY_FILE
    if not inventory.is_file():
        raise StepFailed(f"run_playbook {playbook.name}: the lab has no inventory "
                         f"({inventory} is missing); `testbed up` writes it")
    env = environment(state_root)
    if shutil.which("ansible-playbook", path=env["PATH"]) is None:  # what runner will run
        raise StepFailed("run_playbook: ansible-playbook is not installed (ansible-core: "
                         "scripts/setup.sh installs it into the project's venv)")
    work_dir.mkdir(parents=True, exist_ok=True)
    failures: list[dict[str, Any]] = []

    def on_event(event: dict[str, Any]) -> bool:
        entry = task_entry(event)
        if entry is not None:
            if entry["event"] in ("failed", "unreachable"):
                failures.append(entry)
            note({"action": "playbook_task", "playbook": playbook.name, **entry})
        return True  # ansible-runner keeps the event in its artifacts too

    limit = params.get("limit")
    timeout = params.get("timeout")
    runner = ansible_runner.run(
        private_data_dir=str(work_dir), playbook=str(playbook), inventory=str(inventory),
        extravars=dict(params.get("extra_vars") or {}), envvars=env,
        limit=",".join(limit) if limit else None,
        timeout=int(float(timeout)) if timeout else None, event_handler=on_event,
        cancel_callback=cancelled, quiet=True)
    recap = recap_text(runner.stats or {})
    if runner.status == "canceled":
        return f"cancelled ({recap})"
    if failures:
        first = failures[0]
        raise StepFailed(f"run_playbook {playbook.name}: task {first['task']!r} "
                         f"{first['event']} on {first['node']}: {first['message']} "
                         f"(output: {work_dir}/artifacts)")
    if runner.status != "successful":
        raise StepFailed(f"run_playbook {playbook.name}: ansible-playbook ended "
                         f"{runner.status} (rc {runner.rc}); its output: "
                         f"{work_dir}/artifacts")
    return recap


def recap_text(stats: Mapping[str, Any]) -> str:
    """ansible's PLAY RECAP in one line: hosts, then totals of ok/changed/failed."""
    hosts: set[str] = set()
    totals = {}
    for key in ("ok", "changed", "failures", "dark", "skipped"):
        per_host = stats.get(key) or {}
        hosts.update(per_host)
        totals[key] = sum(per_host.values())
    return (f"{len(hosts)} hosts: ok={totals['ok']} changed={totals['changed']} "
            f"failed={totals['failures']} unreachable={totals['dark']} "
            f"skipped={totals['skipped']}")
