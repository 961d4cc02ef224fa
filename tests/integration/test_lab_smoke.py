"""The most basic promise: a topology becomes a lab whose hosts exchange real packets."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.root

TOPOLOGY = """
nodes:
  core: {kind: router}
  a: {kind: host, uplink: {to: core, bandwidth: 10Mbit}}
  b: {kind: host, uplink: {to: core, bandwidth: 10Mbit}}
"""


def test_hosts_on_a_router_reach_each_other(make_lab) -> None:
    lab = make_lab(TOPOLOGY)
    result = lab.exec("a", "ping", "-c", "1", "-W", "2", lab.addr("b"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_lab_is_sealed_from_the_real_network(make_lab) -> None:
    lab = make_lab(TOPOLOGY)
    # 192.0.2.1 (TEST-NET-1) stands for "anything outside": no route may lead there
    result = lab.exec("a", "ping", "-c", "1", "-W", "1", "192.0.2.1")
    assert result.returncode != 0
    assert "Unreachable" in result.stdout + result.stderr
    routes = lab.exec("core", "ip", "route").stdout
    assert "default" not in routes
