"""Capacity held back for a scenario's add_nodes (the 2010 corrective push), on a real lab.

A `held_back: true` node is built with the lab but stays dark: its data links are down,
it has no route and no process, nothing reaches it, and the testbed exporter reports it
off. `add_nodes` brings it in: links and routes up, its services started for the first
time (a supernode-capable node then serves at once) with its own `supernode:` settings.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import pytest

from testbed.lab.runtime import LabRuntime
from testbed.metrics.exporter import TestbedExporter
from testbed.scenario.actions import RunContext
from testbed.scenario.actions.add_nodes import add_nodes
from tests.conftest import RunningLab

pytestmark = pytest.mark.root

TOPOLOGY = """\
overlay:
  time_scale: 0.2
  warmup: 2s
  supernode: {max_children: 5, min_uptime: 300s}
nodes:
  internet: {kind: router}
  login: {kind: login, uplink: {to: internet}}
  sn1: {kind: peer, labels: {sn_capable: true}, uplink: {to: internet}}
  mega1:
    kind: peer
    labels: {sn_capable: true}
    held_back: true
    supernode: {max_children: 500, overload: busy}
    uplink: {to: internet}
  pc1: {kind: peer, uplink: {to: internet}}
"""


def _status(lab: RunningLab, node: str) -> dict[str, object]:
    text = lab.mgmt_get(node, "/status")
    return json.loads(text) if text else {}


def _wait(condition: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.5)
    return condition()


def _node_up(exporter: TestbedExporter, node: str) -> float:
    for family in exporter.collect():
        if family.name == "testbed_node_up":
            return next(s.value for s in family.samples if s.labels["node"] == node)
    raise AssertionError("no testbed_node_up")


def _pings(lab: RunningLab, source: str, target: str) -> bool:
    result = lab.exec(source, "ping", "-c", "1", "-W", "1", lab.addr(target))
    return result.returncode == 0


def test_a_held_back_node_is_dark_until_add_nodes_brings_it_in(
        make_lab: Callable[..., RunningLab]) -> None:
    lab = make_lab(TOPOLOGY)
    runtime = LabRuntime(lab.plan, lab.state, lab.backend)
    exporter = TestbedExporter(lab.plan)

    # held back: links down, no route, no process, unreachable, reported off
    links = lab.exec("mega1", "ip", "-o", "link", "show", "eth0", check=True).stdout
    assert "state DOWN" in links and ",UP" not in links.split(">")[0]
    assert lab.exec("mega1", "ip", "route", "show", "default", check=True).stdout == ""
    assert runtime.live_processes("mega1") == []
    assert not _pings(lab, "pc1", "mega1")
    assert _node_up(exporter, "mega1") == 0 and _node_up(exporter, "pc1") == 1
    # the rest of the lab runs as usual
    assert _wait(lambda: _status(lab, "pc1").get("logged_in") is True, 30)

    outcome = add_nodes(RunContext(runtime, exporter), "mega1", {})

    assert outcome == "added, 1 services started"
    assert len(runtime.live_processes("mega1")) == 1
    assert _pings(lab, "pc1", "mega1")
    assert _node_up(exporter, "mega1") == 1
    # first boot: it serves as a supernode at once, with its own capacity
    assert _wait(lambda: _status(lab, "mega1").get("supernode") is True, 20)
    config = json.loads((lab.state.node_dir("mega1") / "peer.json").read_text())
    assert config["supernode"]["max_children"] == 500
    assert config["supernode"]["overload"]["behaviour"] == "busy"
    assert json.loads((lab.state.node_dir("sn1") / "peer.json").read_text()
                      )["supernode"]["max_children"] == 5

