"""Each NAT type's mapping and filtering behaviour, proven with real UDP packets.

STUN-like: a responder on public host s1 tells the PC which public address:port its
packets come from; then s1 from the same port, s1 from another port, and s2 (never
contacted) each send to that mapping, and the PC reports which arrived. The first of
those (a reply from the contacted endpoint) must always arrive: the positive control.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.root

TYPES = ("full-cone", "restricted-cone", "port-restricted-cone", "symmetric")

TOPOLOGY = """
nodes:
  core: {kind: router}
  s1: {kind: host, uplink: {to: core}}
  s2: {kind: host, uplink: {to: core}}
""" + "".join(f"""
  nat-{t}: {{kind: nat, nat: {{type: {t}, udp_timeout: 30s}}, uplink: {{to: core}}}}
  pc-{t}: {{kind: host, uplink: {{to: nat-{t}}}}}
""" for t in TYPES)

# s1: answer the PC's first datagram with the source it saw, then send to that mapping
# from the same port and from another port.
S1 = r"""
import socket, sys, time
a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); a.bind(("0.0.0.0", 3478))
b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); b.bind(("0.0.0.0", 3479))
a.settimeout(10)
data, src = a.recvfrom(100)
a.sendto(f"{src[0]}:{src[1]}".encode(), src)
time.sleep(0.7)
a.sendto(b"same-port", src)
b.sendto(b"other-port", src)
"""

# s2: answer one datagram with the source it saw (the PC's mapping toward s2).
S2_RESPONDER = r"""
import socket
a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); a.bind(("0.0.0.0", 3478))
a.settimeout(15)
data, src = a.recvfrom(100)
a.sendto(f"{src[0]}:{src[1]}".encode(), src)
"""

UNSOLICITED = r"""
import socket, sys
ip, port = sys.argv[1].split(":")
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("0.0.0.0", 5555))
s.sendto(sys.argv[2].encode(), (ip, int(port)))
"""

# the PC: map toward s1, print it, listen, then map toward s2.
PC = r"""
import json, socket, sys, time
s1, s2, listen = sys.argv[1], sys.argv[2], float(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("0.0.0.0", 40000))
s.settimeout(5)
s.sendto(b"map", (s1, 3478))
m1 = s.recv(100).decode()
print(m1, flush=True)
got = []
end = time.time() + listen
while time.time() < end:
    s.settimeout(max(0.05, end - time.time()))
    try:
        got.append(s.recv(100).decode())
    except socket.timeout:
        pass
s.settimeout(5)
s.sendto(b"map", (s2, 3478))
m2 = s.recv(100).decode()
print(json.dumps({"m1": m1, "m2": m2, "got": got}), flush=True)
"""


def _py(code: str, *args: str) -> list[str]:
    return [sys.executable, "-c", code, *args]


def observe(lab, nat_type: str, listen: float = 2.5) -> dict[str, object]:
    pc, nat = f"pc-{nat_type}", f"nat-{nat_type}"
    s1 = lab.popen("s1", *_py(S1), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    s2 = lab.popen("s2", *_py(S2_RESPONDER), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    time.sleep(0.3)
    probe = lab.popen(pc, *_py(PC, lab.addr("s1"), lab.addr("s2"), str(listen)),
                      stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert probe.stdout is not None
        mapping = probe.stdout.readline().strip()
        assert mapping.startswith(lab.addr(nat) + ":"), (mapping, probe.stderr)
        sent = lab.exec("s2", *_py(UNSOLICITED, mapping, "from-s2"))
        assert sent.returncode == 0, sent.stderr
        result = json.loads(probe.stdout.readline())
        probe.wait(10)
    finally:
        for proc in (s1, s2, probe):
            if proc.poll() is None:
                proc.kill()
            proc.wait(5)
    return result


@pytest.fixture(scope="module")
def nat_lab(tmp_path_factory):  # noqa: ANN001, ANN201
    """One lab with all four NAT types (built with the same code as make_lab)."""
    from testbed.backends.netns import NetnsBackend
    from testbed.lab.lifecycle import bring_up
    from testbed.lab.state import LabState
    from testbed.plan.build import build_plan
    from testbed.progress import Progress
    from testbed.topology.loader import load_topology_text
    from tests.conftest import RunningLab, unique_lab_name

    name = unique_lab_name("nat")
    root = tmp_path_factory.mktemp("state")
    topology = load_topology_text(f"name: {name}\n{TOPOLOGY}", f"{name}.yaml")
    plan = build_plan(topology)
    backend, state = NetnsBackend(), LabState(root, name)
    bring_up(topology, plan, backend, state, Progress(enabled=False))
    lab = RunningLab(plan, state, backend, root / f"{name}.yaml")
    yield lab
    lab.down()


EXPECTED = {
    # type: (same public port toward s1 and s2, s1 other port gets in, s2 gets in)
    "full-cone": (True, True, True),
    "restricted-cone": (True, True, False),
    "port-restricted-cone": (True, False, False),
    "symmetric": (False, False, False),
}


@pytest.mark.parametrize("nat_type", TYPES)
def test_mapping_and_filtering(nat_lab, nat_type: str) -> None:
    result = observe(nat_lab, nat_type)
    got = result["got"]
    assert isinstance(got, list)
    assert "same-port" in got, f"positive control failed: {result}"
    same_mapping, other_port_in, s2_in = EXPECTED[nat_type]
    m1_port, m2_port = str(result["m1"]).split(":")[1], str(result["m2"]).split(":")[1]
    assert (m1_port == m2_port) is same_mapping, result
    assert ("other-port" in got) is other_port_in, result
    assert ("from-s2" in got) is s2_in, result


@pytest.mark.parametrize("nat_type", TYPES)
def test_nothing_unsolicited_gets_behind_the_nat(nat_lab, nat_type: str) -> None:
    nat, pc = f"nat-{nat_type}", f"pc-{nat_type}"
    listener = nat_lab.popen(pc, "timeout", "3", "nc", "-l", "-p", "8080",
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    time.sleep(0.3)
    tcp = nat_lab.exec("s1", "nc", "-z", "-w", "2", nat_lab.addr(nat), "8080")
    assert tcp.returncode != 0  # no TCP port forwarding exists
    listener.wait(10)
    private = nat_lab.exec("s1", "ping", "-c", "1", "-W", "1", nat_lab.addr(pc))
    assert private.returncode != 0  # the private address is not routable from outside
    # control: the PC itself reaches s1 through its NAT
    assert nat_lab.exec(pc, "ping", "-c", "1", "-W", "2", nat_lab.addr("s1")).returncode == 0


def test_udp_mapping_idles_out_after_the_timeout(make_lab) -> None:
    lab = make_lab("""
nodes:
  core: {kind: router}
  s1: {kind: host, uplink: {to: core}}
  s2: {kind: host, uplink: {to: core}}
  nat-fc: {kind: nat, nat: {type: full-cone, udp_timeout: 2s}, uplink: {to: core}}
  pc-fc: {kind: host, uplink: {to: nat-fc}}
""")
    s1 = lab.popen("s1", *_py(S1), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    s2 = lab.popen("s2", *_py(S2_RESPONDER), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    time.sleep(0.3)
    probe = lab.popen("pc-fc", *_py(PC, lab.addr("s1"), lab.addr("s2"), "6"),
                      stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert probe.stdout is not None
        mapping = probe.stdout.readline().strip()
        lab.exec("s2", *_py(UNSOLICITED, mapping, "fresh"))  # mapping is live: gets in
        time.sleep(4.5)  # more than udp_timeout of silence from the PC
        lab.exec("s2", *_py(UNSOLICITED, mapping, "stale"))
        got = json.loads(probe.stdout.readline())["got"]
    finally:
        for proc in (s1, s2, probe):
            if proc.poll() is None:
                proc.kill()
            proc.wait(5)
    assert "fresh" in got
    assert "stale" not in got
