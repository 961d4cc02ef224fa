"""Reachability and throughput probes between lab nodes: what Mininet's `net.ping()` and
`net.iperf()` do, with real ping and iperf3 run inside the nodes' namespaces.

Pings run in parallel (a failed one waits its whole timeout); iperf3's server is started
for one test (`-1`) and waited for by its pid, so nothing is left running.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from testbed.errors import LabError

if TYPE_CHECKING:
    from testbed.lab.node import LabNode
    from testbed.plan.model import NetworkPlan, PlannedNode

IPERF_PORT = 5201


@dataclass(frozen=True)
class PingResult:
    source: str
    destination: str
    received: bool
    output: str = ""
    sent: bool = True  # False: no ping could mean the destination (see private_elsewhere)


def realms_seen(plan: NetworkPlan, node: PlannedNode) -> set[str]:
    """The address realms whose addresses mean their own hosts from inside `node`: its own
    realm and those its NATs lead out to (public in the end); a NAT also sees its inside."""
    seen = {node.realm, *([node.inner_realm] if node.inner_realm else [])}
    realm = node.realm
    while realm.startswith("nat:"):
        nat = plan.nodes.get(realm.split(":", 1)[1])
        if nat is None or nat.realm in seen:
            break
        realm = nat.realm
        seen.add(realm)
    return seen


def private_elsewhere(plan: NetworkPlan, source: str, destination: str) -> str | None:
    """Why `destination`'s first address does not name it from inside `source` (it is
    private to a NAT realm `source` is not in: there it is another host's address, or
    nobody's), or None when a ping to it means the destination."""
    src, dst = plan.nodes[source], plan.nodes[destination]
    if not dst.realm.startswith("nat:") or dst.realm in realms_seen(plan, src):
        return None
    nat = dst.realm.split(":", 1)[1]
    return (f"{destination}'s address {dst.primary_address()} is private to the realm "
            f"behind {nat}: from {source} it names another host or none")


def ping_pairs(nodes: Sequence[LabNode], timeout: float = 1.0, workers: int = 8,
               plan: NetworkPlan | None = None) -> list[PingResult]:
    """One ping from every node to every other (as Mininet's pingall), in order. With the
    lab's plan, a pair whose destination's address is private to another NAT realm counts
    as lost without a ping: the reply would come from a host of the source's own realm
    that has the same address (home PCs behind their NATs all answer for 192.168.1.2)."""
    pairs = [(a, b) for a in nodes for b in nodes if a.name != b.name]

    def one(pair: tuple[LabNode, LabNode]) -> PingResult:
        source, destination = pair
        why = plan and private_elsewhere(plan, source.name, destination.name)
        if why:
            return PingResult(source.name, destination.name, False, why, sent=False)
        return ping_once(source, destination, timeout)

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        return list(pool.map(one, pairs))


def ping_once(source: LabNode, destination: LabNode | str, timeout: float = 1.0
              ) -> PingResult:
    """One echo request from `source` to a node (its first address) or an address."""
    name = destination if isinstance(destination, str) else destination.name
    address = destination if isinstance(destination, str) else destination.ip
    if address is None:
        return PingResult(source.name, name, False, f"{name} has no address")
    wait = max(1, round(timeout))
    result = source.exec("ping", "-n", "-c1", f"-W{wait}", address, timeout=wait + 10)
    return PingResult(source.name, name, result.returncode == 0,
                      result.stdout + result.stderr)


def loss_percent(results: Sequence[PingResult]) -> float:
    """Mininet's figure: the share of pings that got no answer, in percent."""
    if not results:
        return 0.0
    return 100.0 * sum(not r.received for r in results) / len(results)


@dataclass(frozen=True)
class IperfResult:
    client: str
    server: str
    protocol: str
    received_bps: float  # at the server: what crossed the network
    sent_bps: float  # by the client (send() is buffered: may be higher)


def iperf(client: LabNode, server: LabNode, seconds: float = 5.0, udp_bw: str | None = None,
          port: int = IPERF_PORT, plan: NetworkPlan | None = None) -> IperfResult:
    """A TCP (or, with udp_bw such as '10M', UDP) iperf3 test from client to server. With
    the lab's plan, refused at once when the server's address means another host (or
    none) from the client: a private address behind another NAT."""
    why = plan and private_elsewhere(plan, client.name, server.name)
    if why:
        raise LabError(f"iperf3 from {client.name} to {server.name}: {why}")
    address = server.ip
    if address is None:
        raise LabError(f"{server.name} has no address to run an iperf server on")
    daemon = server.popen("iperf3", "-s", "-1", "-p", str(port), stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE)
    try:
        _wait_listening(server, port, daemon)
        argv = ["iperf3", "-c", address, "-p", str(port), "-t", f"{max(1, round(seconds))}",
                "-J"]
        if udp_bw:
            argv += ["-u", "-b", udp_bw]
        result = client.exec(*argv, timeout=seconds + 30)
        data = _json(result.stdout)
        if result.returncode != 0 or "error" in data:
            raise LabError(f"iperf3 from {client.name} to {server.name} ({address}) failed: "
                           f"{data.get('error') or result.stderr.strip() or result.stdout}")
    finally:
        try:
            daemon.wait(timeout=5)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()
    end = data.get("end", {})
    if udp_bw:
        sent = received = float(end.get("sum", {}).get("bits_per_second", 0.0))
    else:
        sent = float(end.get("sum_sent", {}).get("bits_per_second", 0.0))
        received = float(end.get("sum_received", {}).get("bits_per_second", 0.0))
    return IperfResult(client.name, server.name, "UDP" if udp_bw else "TCP", received, sent)


def _wait_listening(server: LabNode, port: int, daemon: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if daemon.poll() is not None:
            raise LabError(f"iperf3 server in {server.name} exited: "
                           f"{(daemon.stderr.read() if daemon.stderr else '').strip()}")
        listening = server.exec("ss", "-Hltn", f"sport = :{port}", timeout=10).stdout
        if listening.strip():
            return
        time.sleep(0.05)
    raise LabError(f"iperf3 server in {server.name} did not listen on port {port} within 10s")


def _json(text: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return {"error": text.strip()[-300:] or "no output"}
    return data if isinstance(data, dict) else {"error": "unexpected output"}


def rate_text(bps: float) -> str:
    """As iperf prints a rate: '9.57 Mbits/sec'."""
    for unit, size in (("Gbits/sec", 1e9), ("Mbits/sec", 1e6), ("Kbits/sec", 1e3)):
        if bps >= size:
            return f"{bps / size:.3g} {unit}"
    return f"{bps:.3g} bits/sec"
