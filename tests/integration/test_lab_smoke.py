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


def test_any_binary_gets_its_address_state_dir_and_the_labs_bootstrap_list(make_lab) -> None:
    lab = make_lab("""
nodes:
  core: {kind: router}
  login: {kind: login, command: "sleep 600", uplink: {to: core}}
  sn1: {kind: host, labels: {sn_capable: true}, uplink: {to: core}}
  sn2: {kind: host, labels: {sn_capable: true}, uplink: {to: core}}
  mine:
    kind: peer
    command: ["sh", "-c", "echo {addr} {bootstrap} {login} > {state_dir}/args; sleep 600"]
    uplink: {to: core}
""")
    args = lab.state.node_dir("mine") / "args"
    import time

    deadline = time.monotonic() + 10
    while not args.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    addr, bootstrap, login = args.read_text().split()
    assert addr == lab.addr("mine")
    assert bootstrap.split(",") == [lab.addr("sn1"), lab.addr("sn2")]
    assert login == lab.addr("login")
