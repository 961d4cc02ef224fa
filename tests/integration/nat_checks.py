"""NAT-type checks shared by the native lab (test_nat_types.py) and the replayed
containerlab export (test_clab_replay.py), so both backends answer the same questions.

A lab for these has public hosts s1 and s2 (STUN-like servers) and, per type, a NAT
`nat-<type>` with one inside host `pc-<type>`. A small agent runs in each host: it
binds UDP sockets on request, sends from them, reports what they received (payload and
source address:port) and, on "reflector" sockets, answers every datagram with the source
address:port it saw - that is how STUN observes a NAT's public mapping. The lab object
needs `popen(node, *argv, **kw)`, `addr(node)` and `uplink_addr(node)`.

Every negative is checked together with a positive control that travels the same path
and is sent after it, so a broken lab (nothing delivered at all) cannot pass.
"""

from __future__ import annotations

import itertools
import json
import select
import subprocess
import sys
from typing import Any

Lab = Any  # tests.conftest.RunningLab or tests.integration.clab_replay.ReplayLab

TYPES = ("full-cone", "restricted-cone", "port-restricted-cone", "symmetric")


def nat_topology(types: tuple[str, ...] = TYPES, extra: str = "",
                 core: str = "{kind: router}") -> str:
    """Nodes (YAML) of the NAT-type lab: s1, s2 on a core router, `extra` nodes, then a
    NAT and a PC per type."""
    head = (f"\n  core: {core}\n"
            "  s1: {kind: host, uplink: {to: core, bandwidth: 100Mbit}}\n"
            "  s2: {kind: host, uplink: {to: core, bandwidth: 100Mbit}}\n")
    return head + extra + "".join(
        f"\n  nat-{t}: {{kind: nat, nat: {{type: {t}, udp_timeout: 30s}}, uplink: {{to: core}}}}"
        f"\n  pc-{t}: {{kind: host, uplink: {{to: nat-{t}, bandwidth: 100Mbit}}}}\n"
        for t in types)


# Runs in a node; one JSON command per stdin line, one JSON answer per stdout line.
AGENT = r"""
import json, queue, socket, sys, threading, time
udp, inbox = {}, {}

def serve(port, sock, reflect):
    while True:
        try:
            data, src = sock.recvfrom(2048)
        except ConnectionRefusedError:
            continue
        except OSError:
            return
        if reflect:
            sock.sendto(f"seen {src[0]}:{src[1]}".encode(), src)
        inbox[port].put([data.decode(errors="replace"), src[0], src[1]])

def accept(port, sock):
    while True:
        conn, src = sock.accept()
        inbox[f"tcp{port}"].put(["tcp", src[0], src[1]])
        conn.close()

def udp_socket(port, reflect=False):
    if port not in udp:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("0.0.0.0", port))
        udp[port], inbox[port] = s, queue.Queue()
        threading.Thread(target=serve, args=(port, s, reflect), daemon=True).start()
    return udp[port]

def collect(key, until, timeout, grace):
    got, deadline, seen = [], time.monotonic() + timeout, False
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return got
        try:
            item = inbox[key].get(timeout=left)
        except queue.Empty:
            return got
        got.append(item)
        if not seen and until is not None and item[0].startswith(until):
            seen, deadline = True, time.monotonic() + grace

def tcp_connect(ip, port, timeout):
    try:
        socket.create_connection((ip, port), timeout=timeout).close()
        return "connected"
    except ConnectionRefusedError:
        return "refused"
    except TimeoutError:
        return "timeout"
    except OSError as e:
        return type(e).__name__ + ":" + str(e.errno)

for line in sys.stdin:
    cmd = json.loads(line)
    op, out = cmd["op"], {}
    if op == "open":
        udp_socket(cmd["port"], cmd.get("reflect", False))
    elif op == "send":
        udp_socket(cmd["port"]).sendto(cmd["data"].encode(), (cmd["ip"], cmd["to"]))
    elif op == "recv":
        out["got"] = collect(cmd["port"], cmd.get("until"), cmd["timeout"], cmd["grace"])
    elif op == "listen_tcp":
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        t.bind(("0.0.0.0", cmd["port"])); t.listen(8)
        inbox[f"tcp{cmd['port']}"] = queue.Queue()
        threading.Thread(target=accept, args=(cmd["port"], t), daemon=True).start()
    elif op == "accepted":
        out["got"] = collect(f"tcp{cmd['port']}", None, cmd["timeout"], 0)
    elif op == "connect_tcp":
        out["result"] = tcp_connect(cmd["ip"], cmd["to"], cmd["timeout"])
    print(json.dumps(out), flush=True)
"""

Endpoint = tuple[str, int]
Datagram = tuple[str, str, int]  # payload, source address, source port

_ports = itertools.count(20000)


def fresh_port() -> int:
    """A port no earlier test used, so no mapping or conntrack entry is left over."""
    return next(_ports)


class Agent:
    """The agent process in one node, driven over its stdin/stdout."""

    def __init__(self, lab: Lab, node: str) -> None:
        self.node = node
        self._unread: dict[int, list[Datagram]] = {}
        self.proc = lab.popen(node, sys.executable, "-u", "-c", AGENT, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def call(self, **cmd: object) -> dict[str, object]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()
        wait = 10 + float(str(cmd.get("timeout", 0)))
        ready, _, _ = select.select([self.proc.stdout], [], [], wait)
        line = self.proc.stdout.readline() if ready else ""
        if not line:
            self.close()
            raise AssertionError(f"agent in {self.node} did not answer {cmd}: "
                                 f"{self.proc.stderr.read() if self.proc.stderr else ''}")
        answer: dict[str, object] = json.loads(line)
        return answer

    def open(self, port: int, reflect: bool = False) -> None:
        self.call(op="open", port=port, reflect=reflect)

    def send(self, port: int, to: Endpoint, data: str) -> None:
        self.call(op="send", port=port, ip=to[0], to=to[1], data=data)

    def recv(self, port: int, until: str | None, timeout: float = 2,
             grace: float = 0.3) -> list[Datagram]:
        """All datagrams on `port` until one starting with `until` (plus `grace`) or timeout.

        Datagrams put back with `unread` come first.
        """
        earlier = self._unread.pop(port, [])
        if until is not None and any(d[0].startswith(until) for d in earlier):
            until, timeout = None, grace
        got = self.call(op="recv", port=port, until=until, timeout=timeout, grace=grace)["got"]
        assert isinstance(got, list)
        return earlier + [(str(d), str(ip), int(p)) for d, ip, p in got]

    def unread(self, port: int, datagrams: list[Datagram]) -> None:
        """Keep datagrams for the next `recv` on `port`."""
        self._unread.setdefault(port, []).extend(datagrams)

    def listen_tcp(self, port: int) -> None:
        self.call(op="listen_tcp", port=port)

    def accepted(self, port: int, timeout: float = 0.3) -> list[Datagram]:
        got = self.call(op="accepted", port=port, timeout=timeout)["got"]
        assert isinstance(got, list)
        return [(str(d), str(ip), int(p)) for d, ip, p in got]

    def connect_tcp(self, to: Endpoint, timeout: float = 0.5) -> str:
        return str(self.call(op="connect_tcp", ip=to[0], to=to[1], timeout=timeout)["result"])

    def close(self) -> None:
        if self.proc.stdin and not self.proc.stdin.closed:
            self.proc.stdin.close()
        try:
            self.proc.wait(3)
        except subprocess.TimeoutExpired:
            self.proc.kill()  # by the pid we started, nothing else
            self.proc.wait(3)


class NatLab:
    """The lab plus one agent per host."""

    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        self.agents: dict[str, Agent] = {}

    def __getitem__(self, node: str) -> Agent:
        if node not in self.agents:
            self.agents[node] = Agent(self.lab, node)
        return self.agents[node]

    def addr(self, node: str) -> str:
        return self.lab.addr(node)

    def public_addr(self, nat: str) -> str:
        """The address of the NAT's outside (uplink) interface."""
        return self.lab.uplink_addr(nat)

    def stun(self, pc: str, port: int, server: str, server_port: int) -> Endpoint:
        """Send from pc:port to a reflector; return the public address:port it saw."""
        self[server].open(server_port, reflect=True)
        self[pc].send(port, (self.addr(server), server_port), "map")
        got = self[pc].recv(port, until="seen ", grace=0)
        seen = [d for d in got if d[0].startswith("seen ")]
        self[pc].unread(port, [d for d in got if not d[0].startswith("seen ")])
        assert seen, f"{pc}:{port} got no answer from {server}:{server_port} (got {got})"
        payload, src_ip, src_port = seen[-1]
        assert (src_ip, src_port) == (self.addr(server), server_port), seen
        ip, mapped = payload.removeprefix("seen ").split(":")
        return ip, int(mapped)

    def close(self) -> None:
        for agent in self.agents.values():
            agent.close()


ENDPOINT_INDEPENDENT = {"full-cone": True, "restricted-cone": True,
                        "port-restricted-cone": True, "symmetric": False}


def check_mapping(nat_lab: NatLab, nat_type: str) -> None:
    """Cone types keep one public port for every destination; symmetric makes one each."""
    pc, public = f"pc-{nat_type}", nat_lab.public_addr(f"nat-{nat_type}")
    port, s1_a, s1_b, s2_a = fresh_port(), fresh_port(), fresh_port(), fresh_port()
    to_s1 = nat_lab.stun(pc, port, "s1", s1_a)
    again = nat_lab.stun(pc, port, "s1", s1_a)
    to_s1_other_port = nat_lab.stun(pc, port, "s1", s1_b)
    to_s2 = nat_lab.stun(pc, port, "s2", s2_a)
    other_local = nat_lab.stun(pc, fresh_port(), "s1", s1_a)
    mappings = [to_s1, to_s1_other_port, to_s2, other_local]
    assert all(ip == public for ip, _ in mappings), (public, mappings)
    assert again == to_s1, "a mapping must be stable for the same destination"
    assert other_local[1] != to_s1[1], "two inside ports must not share a public port"
    ports = {to_s1[1], to_s1_other_port[1], to_s2[1]}
    if ENDPOINT_INDEPENDENT[nat_type]:
        assert ports == {to_s1[1]}, f"endpoint-independent mapping expected: {mappings}"
    else:
        assert len(ports) == 3, f"endpoint-dependent mapping expected: {mappings}"


# Who may send to the mapping the PC made toward s1 (contacted on one port only):
# (s1 from the contacted port, s1 from another port, s2 which was never contacted)
FILTERING = {
    "full-cone": (True, True, True),
    "restricted-cone": (True, True, False),
    "port-restricted-cone": (True, False, False),
    "symmetric": (True, False, False),
}


def check_filtering(nat_lab: NatLab, nat_type: str) -> None:
    """Who may send in through the mapping a PC made toward s1 (RFC 4787 filtering)."""
    pc, port = f"pc-{nat_type}", fresh_port()
    s1_port, s1_other, s2_port = fresh_port(), fresh_port(), fresh_port()
    mapping = nat_lab.stun(pc, port, "s1", s1_port)  # the PC's only outbound packet
    # candidates first, the control (the contacted endpoint itself, always allowed) last
    probes = {"s2": ("s2", s2_port), "s1-other-port": ("s1", s1_other),
              "s1-same-port": ("s1", s1_port)}
    for label, (server, server_port) in probes.items():
        nat_lab[server].send(server_port, mapping, label)
    got = nat_lab[pc].recv(port, until="s1-same-port")
    delivered = {d[0]: (d[1], d[2]) for d in got}
    assert "s1-same-port" in delivered, f"control not delivered: {got}"
    for label, (server, server_port) in probes.items():
        if label in delivered:  # inbound packets keep their real source address:port
            assert delivered[label] == (nat_lab.addr(server), server_port), got
    same, other_port, never_contacted = FILTERING[nat_type]
    assert ("s1-same-port" in delivered) is same
    assert ("s1-other-port" in delivered) is other_port, f"s1 from another port: {got}"
    assert ("s2" in delivered) is never_contacted, f"s2 (never contacted): {got}"
    assert len(got) == len(delivered), f"duplicates: {got}"
