"""Malformed, truncated, oversized, replayed and unauthenticated input never crashes or
stalls the supernode or the login server: they count it and go on serving."""

from __future__ import annotations

import json
import subprocess

import pytest

from testbed.nodes.overlay import password_of

pytestmark = pytest.mark.root

TOPOLOGY = """
overlay:
  policy: fixed
  time_scale: 0.1
  supernode: {min_uptime: 1s}
nodes:
  core: {kind: router}
  login: {kind: login, uplink: {to: core}}
  sn1: {kind: peer, labels: {sn_capable: true}, uplink: {to: core}}
  alice: {kind: peer, uplink: {to: core}}
  mallory: {kind: host, uplink: {to: core}}
"""

FUZZ = r"""
import json, random, socket, struct, time
from scapy.all import IP, UDP, Raw, send
from testbed.peer.wire import MessageType, encode
sn, login = "{sn}", "{login}"
rng = random.Random(2007)
valid = [encode(MessageType.PROBE, {{"nonce": 1}}),
         encode(MessageType.JOIN, {{"user": "x"}}),
         encode(MessageType.LOOKUP, {{"user": "alice", "ttl": 3}}),
         encode(MessageType.REGISTER, {{"token": "forged.token"}})]
def mutate(data):
    data = bytearray(data)
    for _ in range(rng.randint(1, 6)):
        choice = rng.random()
        if choice < 0.4 and data:
            data[rng.randrange(len(data))] = rng.randrange(256)
        elif choice < 0.6:
            data = data[:rng.randrange(len(data) + 1)]
        elif choice < 0.8:
            data += rng.randbytes(rng.randint(1, 64))
        else:
            data[4:8] = struct.pack(">I", rng.choice([0, 65535, 2**31, 16385]))
    return bytes(data)
packets = []
for i in range(1500):
    payload = rng.randbytes(rng.randint(0, 200)) if i % 3 == 0 else mutate(rng.choice(valid))
    packets.append(IP(dst=sn) / UDP(sport=40000 + i % 100, dport=33033) / Raw(payload))
huge = b"SK\x01\x01" + struct.pack(">I", 60000) + b"x" * 1400
packets.append(IP(dst=sn) / UDP(sport=40001, dport=33033) / Raw(huge))
send(packets, verbose=False)
streams = 0
for target, port in ((sn, 33033), (sn, 443), (login, 443)):
    for i in range(60):
        s = socket.create_connection((target, port), timeout=3)
        junk = rng.randbytes(rng.randint(1, 300)) if i % 2 else mutate(rng.choice(valid))
        try:
            s.sendall(junk)
            if i % 5 == 0:
                s.sendall(struct.pack(">2sBBI", b"SK", 1, 0x20, 16000) + b"{{")  # truncated
        except OSError:
            pass
        s.close()
        streams += 1
# a replayed login: the same valid message twice
ts, nonce = time.time(), "fixed-nonce"
import hmac, hashlib
proof = hmac.new(b"{password}", f"alice|{{ts}}|{{nonce}}".encode(), hashlib.sha256).hexdigest()
msg = encode(MessageType.LOGIN, {{"user": "alice", "ts": ts, "nonce": nonce, "proof": proof}})
for _ in range(2):
    s = socket.create_connection((login, 443), timeout=3)
    s.sendall(msg)
    time.sleep(0.3)
    s.close()
print(json.dumps({{"datagrams": len(packets), "streams": streams}}))
"""

CHECK = r"""
import json, socket, time, uuid, hmac, hashlib
from testbed.peer.wire import MessageType, StreamDecoder, decode_datagram, encode
sn, login = "{sn}", "{login}"
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.settimeout(3)
u.sendto(encode(MessageType.PROBE, {{"nonce": "after"}}), (sn, 33033))
ack = decode_datagram(u.recv(65536))
ts, nonce = time.time(), uuid.uuid4().hex
proof = hmac.new(b"{password}", f"alice|{{ts}}|{{nonce}}".encode(), hashlib.sha256).hexdigest()
s = socket.create_connection((login, 443), timeout=5)
s.sendall(encode(MessageType.LOGIN, {{"user": "alice", "ts": ts, "nonce": nonce, "proof": proof}}))
d = StreamDecoder(); frames = []
while not frames:
    frames = d.feed(s.recv(4096))
print(json.dumps({{"probe": ack.type.name, "login": frames[0].type.name}}))
"""


def _metrics(lab, node: str) -> dict[str, float]:
    text = lab.mgmt_get(node, "/metrics")
    values: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("peer_protocol_errors_total{"):
            reason = line.split('reason="')[1].split('"')[0]
            values[reason] = float(line.rsplit(" ", 1)[1])
    return values


def test_fuzzed_supernode_and_login_server_keep_serving(make_lab) -> None:
    lab = make_lab(TOPOLOGY)
    values = {"sn": lab.addr("sn1"), "login": lab.addr("login"),
              "password": password_of(lab.plan, lab.plan.overlay, "alice")}
    import time

    time.sleep(2)  # sn1's promotion (min_uptime 1s x time_scale)
    fuzz = lab.python("mallory", FUZZ.format(**values), timeout=240)
    assert fuzz.returncode == 0, fuzz.stderr[-2000:]
    sent = json.loads(fuzz.stdout.strip().splitlines()[-1])
    assert sent["datagrams"] > 1000 and sent["streams"] == 180

    for record in lab.state.read().processes:
        if record.node in ("sn1", "login"):
            assert subprocess.run(["kill", "-0", str(record.pid)]).returncode == 0, record.node

    check = lab.python("mallory", CHECK.format(**values), timeout=60)
    assert check.returncode == 0, check.stderr[-2000:]
    assert json.loads(check.stdout) == {"probe": "PROBE_ACK", "login": "LOGIN_OK"}

    sn_errors, login_errors = _metrics(lab, "sn1"), _metrics(lab, "login")
    print("protocol errors:", sn_errors, login_errors)
    for reason in ("magic", "malformed", "truncated", "oversize"):
        assert sn_errors.get(reason, 0) > 0, (reason, sn_errors)
    assert sn_errors.get("unauthenticated", 0) > 0 or sn_errors.get("unexpected", 0) > 0
    assert login_errors.get("replayed", 0) >= 1, login_errors
    assert sum(login_errors.values()) > 10
