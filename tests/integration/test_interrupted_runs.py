"""Interrupted runs keep every result, on a real lab (a login server, a supernode, one
client; two captures; a reboot):

- Ctrl-C as a terminal sends it (SIGINT to the whole process group) during a capture
  scenario: every capture is indexed with tcpdump's counts, no verdict calls a declared
  capture undeclared, and `testbed check` afterwards evaluates the PromQL expectation
  from the run's own TSDB snapshot;
- a run killed outright (SIGKILL): `testbed down` notices the orphaned run of its lab
  and recovers its series, summary (complete: false), captures index and TSDB from disk
  (while the run was still going, `testbed results recover` refused it).
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from testbed.metrics.offline import free_port
from tests.conftest import REPO, run_cli, unique_lab_name

pytestmark = [pytest.mark.root, pytest.mark.slow]

TOPOLOGY = """
name: {name}
overlay:
  policy: fixed
  time_scale: 0.1
  supernode: {{min_uptime: 1s}}
nodes:
  core: {{kind: router}}
  login: {{kind: login, uplink: {{to: core}}}}
  sn1: {{kind: peer, labels: {{sn_capable: true}}, uplink: {{to: core}}}}
  alice: {{kind: peer, uplink: {{to: core}}}}
"""

SCENARIO = """
name: interrupted
seed: 1
duration: 120s
captures:
  - {node: login, filter: tcp port 443, name: login}
  - {node: alice, name: alice}
steps:
  - at: 0s
    action: wait_until
    query: (sum(peer_logged_in{kind="peer"}) / count(peer_info{kind="peer"})) >= 1
    timeout: 60s
  - at: 1s
    action: restart_wave
    select: {names: [alice]}
    window: 1s
    down_time: {kind: fixed, value: 1s}
    mode: hard
expect:
  - name: alice logged in again (SYN to the login server)
    check: packets
    capture: login
    to: login
    proto: tcp
    flags: SYN !ACK
    min: 1
  - name: every peer is logged in (Prometheus)
    check: promql
    query: sum(peer_logged_in{kind="peer"}) / count(peer_info{kind="peer"})
    reduce: last
    min: 1
"""


def _start(tmp: Path, run_id: str) -> tuple[subprocess.Popen[str], str, list[str]]:
    """`testbed run` in its own process group (as a terminal's job), up to its play."""
    lab = unique_lab_name("ir")
    (tmp / "topology.yaml").write_text(TOPOLOGY.format(name=lab))
    (tmp / "scenario.yaml").write_text(SCENARIO)
    env = dict(os.environ, TESTBED_STATE_DIR=str(tmp / "state"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "testbed", "run", str(tmp / "topology.yaml"),
         str(tmp / "scenario.yaml"), "--results", str(tmp / "results"), "--run-id", run_id,
         "--no-report", "--ui-port", str(free_port())],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True)
    assert proc.stdout is not None
    output = []
    for line in proc.stdout:
        output.append(line)
        if line.startswith("== playing"):
            break
    assert output and output[-1].startswith("== playing"), "".join(output)
    # the reboot played (however long the first wait_until held), then a few seconds of
    # alice logging in again: interrupting before that would leave nothing to keep
    steps = tmp / "results" / run_id / "steps.jsonl"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and not (
            steps.exists() and '"host_up"' in steps.read_text()):
        time.sleep(0.5)
    assert '"host_up"' in steps.read_text(), steps.read_text()
    time.sleep(6)
    return proc, lab, output


def test_ctrl_c_to_the_process_group_keeps_captures_and_verdicts(tmp_path: Path) -> None:
    proc, lab, output = _start(tmp_path, "cc")
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does
    rest, _ = proc.communicate(timeout=180)
    text = "".join(output) + rest
    assert "== interrupted (Ctrl-C or SIGTERM)" in text, text[-3000:]
    assert "No such process" not in text and "could not stop" not in text, text[-3000:]
    run_dir = tmp_path / "results" / "cc"
    index = {e["name"]: e for e in json.loads((run_dir / "captures" / "index.json")
                                              .read_text())}
    assert sorted(index) == ["alice", "login"]
    for entry in index.values():
        assert entry["packets"] and entry["stopped_unix"], entry
    verdicts = {v["name"]: v for v in json.loads((run_dir / "verdicts.json").read_text())}
    assert all("declared" not in (v["detail"] or "") for v in verdicts.values()), verdicts
    assert verdicts["alice logged in again (SYN to the login server)"]["status"] == "pass"
    assert not (tmp_path / "state" / lab).exists()
    # later, with the run's Prometheus long gone: the PromQL check runs on its TSDB
    again = run_cli("check", str(run_dir))
    assert "promql checks: a Prometheus on the run's tsdb/" in again.stdout, again.stdout
    assert "not evaluated" not in again.stdout, again.stdout
    assert "2 passed (of 2 expectations)" in again.stdout, again.stdout


def test_a_killed_run_is_recovered_by_down(tmp_path: Path) -> None:
    proc, lab, _ = _start(tmp_path, "killed")
    run_dir = tmp_path / "results" / "killed"
    early = run_cli("results", "recover", str(run_dir), "--no-report")  # still going
    assert early.returncode == 1 and "still going" in early.stderr, early.stderr
    assert (run_dir / "prometheus" / "data").is_dir() and proc.poll() is None
    proc.kill()  # SIGKILL: no handler, nothing written at the end
    proc.wait(timeout=30)
    assert json.loads((run_dir / "run.json").read_text())["complete"] is False
    assert not (run_dir / "summary.json").exists()
    down = run_cli("down", lab, state_dir=tmp_path / "state", timeout=180)
    assert down.returncode == 0, down.stdout + down.stderr
    assert f"run {run_dir} was interrupted" in down.stdout, down.stdout
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["complete"] is False and summary["recovered"] is True
    assert summary["min_online_fraction"] is not None and summary["trigger_start_s"]
    with open(run_dir / "series.csv", encoding="utf-8") as rows:
        online = [float(r["t"]) for r in csv.DictReader(rows)
                  if r["series"] == "online_fraction"]
    assert len(online) >= 8 and max(online) < 60, online  # the run, not until `down`
    index = {e["name"]: e for e in json.loads((run_dir / "captures" / "index.json")
                                              .read_text())}
    assert sorted(index) == ["alice", "login"]
    assert all((run_dir / e["file"]).stat().st_size > 24 for e in index.values())
    assert (run_dir / "tsdb").is_dir() and not (run_dir / "prometheus" / "data").exists()
    assert (run_dir / "report" / "report.html").is_file(), down.stdout
    info = json.loads((run_dir / "run.json").read_text())
    assert info["complete"] is False and info["recovered_unix"]
    again = run_cli("results", "recover", str(run_dir), "--no-report")  # idempotent
    assert again.returncode == 0, again.stderr
