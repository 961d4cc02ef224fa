"""The reference overlay on real labs: logins across NATs and a proxy, lookups, calls
whose media path is proven from packet captures, supernode loss and client restarts."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from scapy.all import IP, UDP, rdpcap  # type: ignore[import-untyped]

from tests.conftest import RunningLab

pytestmark = pytest.mark.root

MIXED = """
overlay:
  policy: fixed
  time_scale: 0.1
  supernode: {min_uptime: 1s, max_children: 25}
nodes:
  core: {kind: router}
  login: {kind: login, uplink: {to: core, bandwidth: 100Mbit}}
  sn{n}: {count: 3, kind: peer, labels: {sn_capable: true}, uplink: {to: core}}
  home{n:02}-nat:
    count: 40
    kind: nat
    uplink: {to: core, up: 512kbit, down: 8Mbit}
    vary: {nat.type: [full-cone, restricted-cone, port-restricted-cone, symmetric]}
  home{n:02}: {count: 40, kind: peer, uplink: {to: "home{n:02}-nat"}}
  corp-fw: {kind: nat, firewall: {egress: proxy-only, proxy: corp-proxy}, uplink: {to: core}}
  corp-lan: {kind: switch, uplink: {to: corp-fw}}
  corp-proxy: {kind: proxy, uplink: {to: corp-lan}}
  corp{n}: {count: 7, kind: peer, uplink: {to: corp-lan}}
"""


def control(lab: RunningLab, node: str, path: str, timeout: float = 20) -> dict[str, object]:
    """The peer's control API (JSON), through the lab's management namespace."""
    text = lab.mgmt_get(node, path, timeout)
    return json.loads(text) if text else {}


def wait_for(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def clients(lab: RunningLab) -> list[str]:
    return [n for n, p in lab.plan.nodes.items()
            if p.kind == "peer" and not n.startswith("sn")]


def test_fifty_peers_behind_nats_and_a_proxy_all_log_in_and_find_each_other(make_lab) -> None:
    lab = make_lab(MIXED)
    names = clients(lab)
    assert len(names) == 47

    def everyone_online() -> bool:
        return all(control(lab, n, "/status").get("logged_in") for n in names)

    wait_for(everyone_online, 90, "all 47 clients to log in")
    # every reference peer was forked from the lab's one pre-forking launcher
    records = lab.state.read().processes
    launchers = [r.pid for r in records if r.service == "launcher"]
    peers = [r.pid for r in records if r.service == "peer"]
    assert len(launchers) == 1 and len(peers) == 51  # 47 clients, 3 supernodes, login
    parents = {int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
               for pid in peers}
    assert parents == set(launchers)
    corp = control(lab, "corp1", "/status")
    assert corp["attached_to"], corp
    # the corporate PC got out only through the proxy: tinyproxy logged its CONNECTs
    proxy_log = (lab.state.node_dir("corp-proxy") / "tinyproxy.log").read_text()
    assert "CONNECT" in proxy_log
    found = control(lab, "home01", "/lookup?user=corp3")
    assert found.get("found") is True
    assert control(lab, "home01", "/lookup?user=nobody").get("found") is False


def _capture(lab: RunningLab, node: str, iface: str, path: Path) -> subprocess.Popen[str]:
    proc = lab.popen(node, "tcpdump", "-i", iface, "-n", "-U", "-w", str(path), "udp",
                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(1.0)
    return proc


def _media_destinations(pcap: Path, source: str) -> set[str]:
    """Destinations of 100-byte media datagrams sent from `source` (a NAT's WAN address)."""
    return {pkt[IP].dst for pkt in rdpcap(str(pcap))
            if UDP in pkt and pkt[IP].src == source and len(pkt[UDP].payload) == 100}


CALLS = """
overlay:
  policy: fixed
  time_scale: 0.1
  supernode: {min_uptime: 1s}
nodes:
  core: {kind: router}
  login: {kind: login, uplink: {to: core}}
  sn{n}: {count: 3, kind: peer, labels: {sn_capable: true}, uplink: {to: core}}
  fc{n}-nat: {count: 2, kind: nat, nat: {type: full-cone}, uplink: {to: core}}
  fc{n}: {count: 2, kind: peer, uplink: {to: "fc{n}-nat"}}
  sy{n}-nat: {count: 2, kind: nat, nat: {type: symmetric}, uplink: {to: core}}
  sy{n}: {count: 2, kind: peer, uplink: {to: "sy{n}-nat"}}
"""


def test_call_media_path_direct_between_cones_relayed_between_symmetric_nats(
        make_lab, tmp_path: Path) -> None:
    lab = make_lab(CALLS)
    wait_for(lambda: all(control(lab, n, "/status").get("logged_in")
                         for n in ("fc1", "fc2", "sy1", "sy2")), 60, "logins")
    supernodes = {lab.addr(f"sn{i}") for i in (1, 2, 3)}

    pcap = tmp_path / "fc1-nat.pcap"
    dump = _capture(lab, "fc1-nat", "eth0", pcap)
    direct = control(lab, "fc1", "/call?to=fc2&seconds=3")
    dump.send_signal(signal.SIGINT)
    dump.wait(10)
    assert direct["ok"] and direct["path"] == "direct", direct
    destinations = _media_destinations(pcap, lab.addr("fc1-nat"))
    assert lab.addr("fc2-nat") in destinations
    assert not destinations & supernodes

    pcap = tmp_path / "sy1-nat.pcap"
    dump = _capture(lab, "sy1-nat", "eth0", pcap)
    relayed = control(lab, "sy1", "/call?to=sy2&seconds=5")
    dump.send_signal(signal.SIGINT)
    dump.wait(10)
    assert relayed["ok"] and relayed["path"] == "relayed", relayed
    destinations = _media_destinations(pcap, lab.addr("sy1-nat"))
    relays = destinations & supernodes
    assert len(relays) == 1, destinations
    # the media that got through went via the relay, never straight to the other NAT
    packets = rdpcap(str(pcap))
    to_relay = [p for p in packets if UDP in p and p[IP].dst in relays
                and len(p[UDP].payload) == 100]
    assert len(to_relay) >= 20


def test_losing_a_supernode_makes_its_clients_reattach_and_restart_keeps_host_cache(
        make_lab) -> None:
    lab = make_lab(CALLS)
    peers = ("fc1", "fc2", "sy1", "sy2")
    wait_for(lambda: all(control(lab, n, "/status").get("logged_in") for n in peers), 60,
             "logins")
    victim_addr = str(control(lab, "fc1", "/status")["attached_to"])
    victim = next(f"sn{i}" for i in (1, 2, 3) if victim_addr.startswith(lab.addr(f"sn{i}") + ":"))
    record = next(r for r in lab.state.read().processes if r.node == victim)
    os.kill(record.pid, signal.SIGKILL)
    wait_for(lambda: (s := control(lab, "fc1", "/status")).get("logged_in")
             and s.get("attached_to") not in (None, victim_addr), 60,
             "fc1 to re-attach to another supernode")

    cache_file = lab.state.node_dir("fc2") / "hostcache.json"
    learnt = json.loads(cache_file.read_text())
    assert len(learnt) == 3  # bootstrap plus what JOIN_OK taught it
    client = next(r for r in lab.state.read().processes if r.node == "fc2")
    os.kill(client.pid, signal.SIGKILL)
    restarted = lab.popen("fc2", *_argv_of(lab, "fc2"),
                          cwd=str(lab.state.node_dir("fc2")),
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: control(lab, "fc2", "/status", timeout=2).get("node") == "fc2", 30,
                 "fc2 to come back")
        assert control(lab, "fc2", "/status")["host_cache"][:len(learnt)] == learnt
    finally:
        restarted.kill()
        restarted.wait(5)


def _argv_of(lab: RunningLab, node: str) -> list[str]:
    """The command line the testbed starts a reference peer with, to restart one by hand."""
    import sys

    config = lab.state.node_dir(node) / "peer.json"
    return [sys.executable, "-m", "testbed", "peer", "--config", str(config)]
