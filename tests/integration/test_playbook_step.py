"""Patch Tuesday as a scenario step on a small real lab: playbooks/patch-tuesday.yml runs
through ansible-runner against the lab's generated inventory and reboots the Windows PCs
in batches, seen in the run's Prometheus `up` series; a failing playbook stops the run
cleanly with the task and host named and the results kept."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from testbed.lab.state import state_root
from tests.conftest import REPO, run_cli
from tests.integration.tsdb import query_range, reopened_tsdb

pytestmark = [pytest.mark.root, pytest.mark.slow]

# 5 home PCs, 3 supernode PCs and a corporate PC, all labelled os: windows: 9 hosts,
# patched in 3 batches of 3
SMALL = ["--set", "homes=5", "--set", "supernodes=3", "--set", "corp_hosts=1"]
WINDOWS = sorted([f"home{n:03}" for n in range(1, 6)] + ["sn01", "sn02", "sn03", "corp01"])
BATCH = 3
DOWN_TIME = 8
FAILING = REPO / "tests" / "integration" / "playbooks" / "fail-on-one-host.yml"


def _topology(tmp: Path, name: str) -> Path:
    """The default topology under a lab name of this test's own."""
    text = (REPO / "topologies" / "skype-2007.yaml").read_text()
    path = tmp / "topology.yaml"
    path.write_text(text.replace("name: skype2007", f"name: {name}", 1))
    return path


def _scenario(tmp: Path, playbook: str, extra_vars: str) -> Path:
    path = tmp / "scenario.yaml"
    path.write_text(f"""name: pb
params: {{policy: fixed, sn_overload: busy}}
duration: 20s
steps:
  - at: 0s
    action: wait_until
    query: (sum(peer_logged_in{{kind="peer"}}) / count(peer_info{{kind="peer"}})) >= 0.95
    timeout: 90s
  - at: 3s
    action: run_playbook
    playbook: {playbook}
    extra_vars: {extra_vars}
    timeout: 5m
  - after: 5s
    action: mark
    text: after the playbook
""")
    return path


def _steps(run: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run / "steps.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def patched(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("patch")
    scenario = _scenario(tmp, "patch-tuesday.yml",
                         f"{{serial_batch: {BATCH}, down_time: {DOWN_TIME}}}")
    result = run_cli("run", str(_topology(tmp, "pbpatch")), str(scenario), *SMALL,
                     "--results", str(tmp), "--run-id", "patched", "--no-report",
                     timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]
    return tmp / "patched"


def test_the_playbook_reboots_the_windows_pcs_in_batches(patched: Path,
                                                         tmp_path: Path) -> None:
    steps = _steps(patched)
    reboots = [s for s in steps if s.get("action") == "playbook_task"
               and s.get("task") == "Reboot through the testbed"]
    hosts = sorted(s["node"] for s in reboots)
    assert hosts == WINDOWS
    assert all(s["event"] == "changed" for s in reboots), reboots
    step = next(s for s in steps if s.get("action") == "run_playbook")
    assert "failed=0" in step["outcome"], step
    # reboots done by the playbook are restarts, never "crashed"
    assert not [s for s in steps if s.get("action") == "crashed"], steps
    observed = [s for s in steps if s.get("observed")]
    assert sorted(s["node"] for s in observed if s["action"] == "host_down") == WINDOWS
    assert sorted(s["node"] for s in observed if s["action"] == "host_up") == WINDOWS

    info = json.loads((patched / "run.json").read_text())
    t0 = info["started_unix"]
    first_down = min(s["actual"] for s in observed if s["action"] == "host_down")
    assert info["trigger"]["start"] == first_down  # the report shades the rollout
    began = t0 + step["actual"]  # while the playbook ran (peers start up before it)
    ended = t0 + next(s["actual"] for s in steps if s.get("action") == "mark")
    with reopened_tsdb(patched, tmp_path) as url:
        down: dict[str, tuple[float, float]] = {}
        for series in query_range(url, 'up{job="peers"} == 0', began, ended):
            node = series["metric"].get("node")
            if node in hosts:
                times = [float(t) for t, _ in series["values"]]
                down[node] = (min(times), max(times))
        restarts = query_range(url, "testbed_node_restarts_total", t0 + 1, t0 + 600)
    assert sorted(down) == hosts, f"Prometheus saw these peers down: {sorted(down)}"
    # batches: sorted by when they went down, each batch of 3 is down together, and the
    # next batch goes down only after the previous one is back
    order = sorted(down.values())
    batches = [order[i:i + BATCH] for i in range(0, len(order), BATCH)]
    assert len(batches) == 3
    for batch in batches:
        assert max(start for start, _ in batch) < min(end for _, end in batch), batch
    for before, after in zip(batches, batches[1:], strict=False):
        assert max(end for _, end in before) < min(start for start, _ in after), \
            (before, after)
    counted = {s["metric"]["node"]: s["values"][-1][1] for s in restarts
               if s["metric"].get("node") in hosts}
    assert counted == dict.fromkeys(hosts, "1"), counted


def test_a_failing_playbook_stops_the_run_with_task_and_host_and_keeps_results(
        tmp_path: Path) -> None:
    scenario = _scenario(tmp_path, str(FAILING), "{broken_host: sn02}")
    result = run_cli("run", str(_topology(tmp_path, "pbfail")), str(scenario), *SMALL,
                     "--results", str(tmp_path), "--run-id", "failed", "--no-report",
                     timeout=600)
    assert result.returncode == 1, result.stderr[-3000:]
    assert "task 'Break on one host' failed on sn02" in result.stderr, result.stderr[-3000:]
    run = tmp_path / "failed"
    info = json.loads((run / "run.json").read_text())
    assert info["complete"] is False and "Break on one host" in info["error"]
    steps = _steps(run)
    failed = [s for s in steps if s.get("event") == "failed"]
    assert [(s["node"], s["task"]) for s in failed] == [("sn02", "Break on one host")]
    assert not [s for s in steps if s.get("action") == "mark"]  # the run stopped there
    assert (run / "series.csv").is_file() and (run / "tsdb").is_dir()  # results kept
    assert list((run / "ansible").glob("*/artifacts/*/stdout"))  # and Ansible's output
    assert not (state_root() / "pbfail").exists()  # the lab was removed
