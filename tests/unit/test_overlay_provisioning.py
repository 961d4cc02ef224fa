"""Who runs what in an overlay lab: eligibility, bootstrap lists, proxies, credentials."""

from __future__ import annotations

from testbed.nodes.overlay import is_supernode_capable, password_of, peer_config
from testbed.peer.auth import TokenSigner
from testbed.plan.build import build_plan
from testbed.topology.loader import load_topology_text

TOPOLOGY = """
name: prov
overlay: {supernode: {min_bandwidth: 2Mbit}}
nodes:
  core: {kind: router}
  login: {kind: login, uplink: {to: core}}
  fast: {kind: peer, labels: {sn_capable: true}, uplink: {to: core, up: 10Mbit, down: 10Mbit}}
  slow: {kind: peer, labels: {sn_capable: true}, uplink: {to: core, up: 512kbit, down: 8Mbit}}
  open: {kind: peer, labels: {sn_capable: true}, uplink: {to: core}}
  natted-nat: {kind: nat, uplink: {to: core}}
  natted: {kind: peer, labels: {sn_capable: true}, uplink: {to: natted-nat}}
  corp-fw: {kind: nat, firewall: {egress: proxy-only, proxy: corp-proxy}, uplink: {to: core}}
  corp-lan: {kind: switch, uplink: {to: corp-fw}}
  corp-proxy: {kind: proxy, proxy: {port: 3128}, uplink: {to: corp-lan}}
  corp1: {kind: peer, uplink: {to: corp-lan}}
  custom: {kind: peer, command: "my-daemon --listen {addr}", uplink: {to: core}}
"""


def _plan():  # noqa: ANN202
    return build_plan(load_topology_text(TOPOLOGY, "prov.yaml"))


def test_only_public_labelled_nodes_with_enough_upload_become_supernodes() -> None:
    plan = _plan()
    overlay = plan.overlay
    assert overlay is not None
    eligible = {n for n, p in plan.nodes.items() if is_supernode_capable(p, overlay)}
    assert eligible == {"fast", "open"}  # slow: 512kbit up; natted: behind a NAT


def test_clients_get_bootstrap_supernodes_proxy_and_working_credentials() -> None:
    plan = _plan()
    overlay = plan.overlay
    assert overlay is not None
    corp = peer_config(plan.nodes["corp1"], plan, overlay)
    assert corp.proxy == f"{plan.nodes['corp-proxy'].primary_address()}:3128"
    assert sorted(corp.bootstrap) == sorted(
        f"{plan.nodes[n].primary_address()}:33033" for n in ("fast", "open"))
    assert corp.login_server == f"{plan.nodes['login'].primary_address()}:443"
    login = peer_config(plan.nodes["login"], plan, overlay)
    assert login.users["corp1"] == corp.password == password_of(plan, overlay, "corp1")
    assert "custom" not in login.users  # runs its own binary, not the reference peer
    signer = TokenSigner.from_bytes(bytes.fromhex(login.signing_key))
    assert signer.public_bytes().hex() == corp.public_key
    assert peer_config(plan.nodes["natted"], plan, overlay).proxy is None
