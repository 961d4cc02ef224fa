"""The four NAT types, proven with real packets (RFC 4787 mapping and filtering terms).

One lab holds every type (tests/integration/nat_checks.py: public hosts s1 and s2, per
type a NAT `nat-<type>` with one inside host `pc-<type>`); a fifth full-cone NAT with a
2 s UDP timeout serves the idle-timeout test. The mapping and filtering checks are shared
with the replayed containerlab export (test_clab_replay.py).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from testbed.lab.lab import Lab
from tests.conftest import RunningLab, unique_lab_name
from tests.integration.nat_checks import (
    ENDPOINT_INDEPENDENT,
    TYPES,
    NatLab,
    check_filtering,
    check_mapping,
    fresh_port,
    nat_topology,
)

pytestmark = pytest.mark.root

TOPOLOGY = "nodes:" + nat_topology(extra="""\
  nat-timeout: {kind: nat, nat: {type: full-cone, udp_timeout: 2s}, uplink: {to: core}}
  pc-timeout: {kind: host, uplink: {to: nat-timeout}}
""")


@pytest.fixture(scope="module")
def nat_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatLab]:
    """One lab with all NAT types, built exactly as conftest's make_lab builds labs."""
    name = unique_lab_name("nt")
    root = tmp_path_factory.mktemp("nat-types")
    path = Path(root) / f"{name}.yaml"
    path.write_text(f"name: {name}\n{TOPOLOGY}")
    state_root = root / "state"
    state_root.mkdir()
    lab = RunningLab(Lab.up(path, state_dir=state_root), path)
    nat_lab = NatLab(lab)
    try:
        yield nat_lab
    finally:
        try:
            nat_lab.close()
        finally:
            lab.down()


@pytest.mark.parametrize("nat_type", TYPES)
def test_mapping(nat_lab: NatLab, nat_type: str) -> None:
    """Cone types keep one public port for every destination; symmetric makes one each."""
    check_mapping(nat_lab, nat_type)


@pytest.mark.parametrize("nat_type", TYPES)
def test_filtering(nat_lab: NatLab, nat_type: str) -> None:
    check_filtering(nat_lab, nat_type)


@pytest.mark.parametrize("nat_type", TYPES)
def test_nothing_unsolicited_gets_behind_the_nat(nat_lab: NatLab, nat_type: str) -> None:
    """No UDP/TCP from outside reaches the PC unasked, not even routed to its own address."""
    nat, pc = f"nat-{nat_type}", f"pc-{nat_type}"
    public, private = nat_lab.public_addr(nat), nat_lab.addr(pc)
    port, s1_port, reflector = fresh_port(), fresh_port(), fresh_port()
    nat_lab[pc].open(port)
    nat_lab[pc].listen_tcp(port)
    s1 = nat_lab["s1"]

    # 1. to the NAT's public address, on a port the PC listens on but never sent from
    s1.send(s1_port, (public, port), "to-public")
    assert s1.connect_tcp((public, port)) != "connected"
    # 2. to the PC's private address: the internet has no route to it ...
    s1.send(s1_port, (private, port), "to-private")
    assert s1.connect_tcp((private, port)) != "connected"
    core = nat_lab.lab
    assert core.exec("core", "ip", "route", "get", private).returncode != 0
    assert core.exec("core", "ip", "route", "get", public).returncode == 0
    # 3. ... and even routed to the NAT's door, the NAT does not forward it inside
    added = core.exec("core", "ip", "route", "add", f"{private}/32", "via", public)
    assert added.returncode == 0, added.stderr
    try:
        s1.send(s1_port, (private, port), "routed-to-private")
        assert s1.connect_tcp((private, port)) != "connected"
    finally:
        core.exec("core", "ip", "route", "del", f"{private}/32", "via", public, check=True)

    # controls: the NAT itself reaches the PC's listeners from the inside, and the PC's
    # own outbound UDP (from the same port) is answered through the NAT
    control = core.python(nat, f"""
        import socket
        socket.create_connection(("{private}", {port}), timeout=2).close()
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.sendto(b"from-nat-inside", ("{private}", {port}))
    """, timeout=10)
    assert control.returncode == 0, control.stderr
    got = nat_lab[pc].recv(port, until="from-nat-inside")
    tcp = nat_lab[pc].accepted(port)
    assert nat_lab.stun(pc, port, "s1", reflector)[0] == public
    payloads = [d[0] for d in got]
    assert "from-nat-inside" in payloads, f"control not delivered: {got}"
    assert not {"to-public", "to-private", "routed-to-private"} & set(payloads), got
    assert nat_lab.addr("s1") not in [src for _, src, _ in tcp], f"TCP from s1 got in: {tcp}"
    assert len(tcp) == 1, f"only the NAT's own control connection may arrive: {tcp}"


def test_udp_mapping_idles_out_after_the_timeout(nat_lab: NatLab) -> None:
    """Full-cone, udp_timeout 2s: s2 gets in right after the PC sent, not after 4 s idle."""
    pc, port = "pc-timeout", fresh_port()
    s1_port, fresh, stale, again = fresh_port(), fresh_port(), fresh_port(), fresh_port()
    s2 = nat_lab["s2"]
    mapping = nat_lab.stun(pc, port, "s1", s1_port)
    s2.send(fresh, mapping, "fresh")
    assert "fresh" in [d[0] for d in nat_lab[pc].recv(port, until="fresh", grace=0)]

    time.sleep(4)  # twice the udp_timeout without a packet from the PC
    s2.send(stale, mapping, "stale")
    nat_lab["s1"].send(s1_port, mapping, "stale-s1")  # the very endpoint the PC contacted
    # control: once the PC sends again, the (new) mapping lets s2 in again
    renewed = nat_lab.stun(pc, port, "s1", s1_port)
    s2.send(again, renewed, "again")
    got = nat_lab[pc].recv(port, until="again")
    payloads = [d[0] for d in got]
    assert "again" in payloads, f"control not delivered after renewal: {got}"
    assert "stale" not in payloads, f"the mapping outlived its 2 s timeout: {got}"
    assert "stale-s1" not in payloads, f"the flow to s1 outlived its 2 s timeout: {got}"


@pytest.mark.parametrize("nat_type", TYPES)
def test_hole_punching_when_the_peer_comes_first(nat_lab: NatLab, nat_type: str) -> None:
    """A cone keeps its one mapping even if the peer's packet arrives before the PC's.

    UDP hole punching: the PC learns its mapping from s2 (STUN) and tells the peer s1,
    which sends to it at once (restricted cones drop that); then the PC sends to s1. A cone
    sends that from the same public port, so s1's next packets to it get in. Symmetric
    uses a new port toward s1, and the STUN-learned one stays closed to s1.
    """
    pc, port = f"pc-{nat_type}", fresh_port()
    stun_port, peer_port = fresh_port(), fresh_port()
    s1 = nat_lab["s1"]
    mapping = nat_lab.stun(pc, port, "s2", stun_port)
    s1.open(peer_port, reflect=True)
    s1.send(peer_port, mapping, "early")
    time.sleep(0.2)  # let "early" reach the NAT before the PC's packet leaves
    toward_peer = nat_lab.stun(pc, port, "s1", peer_port)
    s1.send(peer_port, mapping, "to-stun-mapping")
    s1.send(peer_port, toward_peer, "control")  # where s1 saw the PC come from: a reply
    got = nat_lab[pc].recv(port, until="control")
    payloads = [d[0] for d in got]
    assert "control" in payloads, f"control not delivered: {got}"
    cone = ENDPOINT_INDEPENDENT[nat_type]
    assert (toward_peer == mapping) is cone, (mapping, toward_peer)
    assert ("to-stun-mapping" in payloads) is cone, f"hole punched: {cone}, got {got}"
    assert ("early" in payloads) is (nat_type == "full-cone"), got
