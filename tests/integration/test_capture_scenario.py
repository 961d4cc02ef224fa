"""A real short scenario checked from its captures (scenarios/capture-check.yaml on a
9-peer version of the default topology): `testbed run` captures, plays, checks the
scenario's expect: over the pcaps and the live Prometheus (login burst, NAT, proxy, a
relayed and a direct call), and exits 1 because of one
deliberately broken expectation; `testbed check` reaches the same verdicts afterwards
from the pcaps and the run's TSDB snapshot; an interrupted run still stops tcpdump and
keeps its pcaps."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.conftest import REPO, run_cli

pytestmark = [pytest.mark.root, pytest.mark.slow]

TOPOLOGY = str(REPO / "topologies" / "skype-2007.yaml")
SCENARIO = REPO / "scenarios" / "capture-check.yaml"
TRACE = REPO / "scenarios" / "traces" / "patch-day-example.csv"
BROKEN = """\
  - name: deliberately broken - 1000 SYN/s at the login server
    check: peak_rate
    capture: login
    to: login
    flags: SYN !ACK
    min: 1000
"""


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    tmp = tmp_path_factory.mktemp("capture-run")
    scenario = tmp / "capture-check.yaml"
    # the reboots spread like a trace file's times (kept with the run's results)
    shutil.copyfile(TRACE, tmp / TRACE.name)
    text = SCENARIO.read_text().replace("    window: 1s\n",
                                        f"    window: 1s\n    trace: {TRACE.name}\n")
    assert f"trace: {TRACE.name}" in text
    scenario.write_text(text + BROKEN)
    result = run_cli("run", TOPOLOGY, str(scenario), "--results", str(tmp / "results"),
                     "--run-id", "cc", "--no-report", "--duration", "35s",
                     state_dir=tmp / "state", timeout=300)
    return tmp / "results" / "cc", result


def test_run_checks_its_expectations_and_fails_on_the_broken_one(run) -> None:  # noqa: ANN001
    run_dir, result = run
    assert result.returncode == 1, result.stderr[-3000:]
    verdicts = {v["name"]: v for v in json.loads((run_dir / "verdicts.json").read_text())}
    broken = verdicts.pop("deliberately broken - 1000 SYN/s at the login server")
    failed = {name: v["detail"] for name, v in verdicts.items() if v["status"] != "pass"}
    assert len(verdicts) == 10 and not failed, failed
    assert broken["status"] == "fail"
    assert broken["where"].endswith("capture-check.yaml:117")  # one line more: trace:
    assert broken["bound"] == ">= 1000 packets/s"
    assert broken["detail"].startswith("busiest interval: t=")
    # what the run printed: the verdicts, the broken one with its file:line and why
    assert "10 passed, 1 failed (of 11 expectations)" in result.stderr
    assert "FAIL     deliberately broken - 1000 SYN/s at the login server  (" in result.stderr
    assert "expected >= 1000 packets/s; captures/login.pcap, whole capture" in result.stderr
    promql = verdicts["every peer is logged in at the end (Prometheus)"]
    assert promql["sources"][0].startswith("http://127.0.0.1:")  # the run's live Prometheus
    suite = ET.parse(run_dir / "junit.xml").getroot()
    assert suite.get("tests") == "11" and suite.get("failures") == "1"
    assert suite.get("errors") == "0"
    info = json.loads((run_dir / "run.json").read_text())
    assert info["complete"] is True
    assert (run_dir / "traces" / TRACE.name).read_text() == TRACE.read_text()
    steps = [json.loads(line) for line in (run_dir / "steps.jsonl").read_text().splitlines()]
    calls = sorted((s["node"], s["outcome"]) for s in steps if s["action"] == "call")
    assert [node for node, _ in calls] == ["home003", "home004"], calls
    assert calls[0][1].startswith("direct call to home001: "), calls
    assert calls[1][1].startswith("relayed call to home002: "), calls


def test_captures_are_indexed_with_tcpdumps_counts(run) -> None:  # noqa: ANN001
    run_dir, _ = run
    index = json.loads((run_dir / "captures" / "index.json").read_text())
    assert [e["name"] for e in index] == ["login", "home1-adsl", "home2-pc", "corp01-eth0"]
    for entry in index:
        assert (run_dir / entry["file"]).stat().st_size > 24, entry
        assert entry["packets"] > 0 and entry["dropped"] == 0, entry
    assert index[0]["filter"] == "tcp port 443" and index[3]["snaplen"] == 128


def test_check_afterwards_gives_the_same_pcap_verdicts_offline(run, tmp_path: Path) -> None:  # noqa: ANN001
    run_dir, _ = run
    # the scenario's own expect: (copied into the run): pcap ones pass again, and the
    # PromQL ones too, on a Prometheus started on the run's TSDB snapshot for the check
    again = run_cli("check", str(run_dir), "--junit", str(tmp_path / "j.xml"))
    assert again.returncode == 1
    assert "10 passed, 1 failed (of 11 expectations)" in again.stdout, again.stdout
    assert "promql checks: a Prometheus on the run's tsdb/" in again.stdout
    pcap_only = tmp_path / "expect.yaml"
    pcap_only.write_text(
        "- {check: peak_rate, capture: login, to: login, port: 443, flags: SYN !ACK, "
        "min: 2}\n- {check: via, capture: corp01, from: corp01, through: corp-proxy}\n")
    ok = run_cli("check", str(run_dir), str(pcap_only))
    assert ok.returncode == 0, ok.stdout
    assert "2 passed (of 2 expectations)" in ok.stdout


def test_an_interrupted_run_stops_tcpdump_and_keeps_the_pcaps(tmp_path: Path) -> None:
    env = dict(os.environ, TESTBED_STATE_DIR=str(tmp_path / "state"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "testbed", "run", TOPOLOGY, str(SCENARIO), "--results",
         str(tmp_path), "--run-id", "cut", "--no-report", "--ui-port", "19391"],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    output = []
    for line in proc.stdout:
        output.append(line)
        if line.startswith("== playing"):
            break
    time.sleep(3)
    proc.send_signal(signal.SIGTERM)
    rest, _ = proc.communicate(timeout=120)
    text = "".join(output) + rest
    assert proc.returncode == 1, text[-3000:]
    assert "== interrupted (Ctrl-C or SIGTERM)" in text
    run_dir = tmp_path / "cut"
    info = json.loads((run_dir / "run.json").read_text())
    assert info["complete"] is False
    index = json.loads((run_dir / "captures" / "index.json").read_text())
    assert len(index) == 4
    for entry in index:  # tcpdump stopped cleanly: it reported its counts, the pcap is whole
        assert entry["packets"] is not None and entry["stopped_unix"], entry
        assert (run_dir / entry["file"]).is_file()
    logs = [(run_dir / e["file"]).with_name(Path(e["file"]).name + ".log") for e in index]
    assert all("packets captured" in log.read_text() for log in logs)
    assert (run_dir / "verdicts.txt").is_file()  # checked over what was gathered
    assert not (tmp_path / "state" / "skype2007").exists()  # the lab is gone
