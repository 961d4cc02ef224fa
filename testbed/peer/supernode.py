"""The supernode role: holds client connections, keeps their presence, answers lookups
and relays media for clients that cannot reach each other.

Listens on its overlay port (TCP and UDP) and on TCP 80 and 443, as Skype did. Capacity
is a maximum number of children plus a join rate; when over it, the supernode either
answers "busy, retry after N s" (`busy`) or, with `drop-role` (the 2010 self-protection),
gives up the supernode role after sustained overload.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass

from testbed.peer.admission import Admission
from testbed.peer.auth import TokenVerifier
from testbed.peer.guard import ConnectionGuard, GuardedServer, RateLimitedLog
from testbed.peer.metrics import PeerMetrics
from testbed.peer.policies import OverloadPolicy
from testbed.peer.relays import Relays
from testbed.peer.wire import (
    Frame,
    MessageType,
    OversizeError,
    ProtocolError,
    decode_datagram,
    encode,
)

DEFAULT_PORT = 33033


@dataclass(frozen=True)
class SupernodeSettings:
    port: int = DEFAULT_PORT
    extra_tcp_ports: tuple[int, ...] = (80, 443)
    max_children: int = 200
    joins_per_second: float = 50.0
    join_queue: int = 50
    overload: OverloadPolicy = OverloadPolicy()


@dataclass
class Child:
    user: str
    writer: asyncio.StreamWriter
    address: str  # ip:port the client's connection comes from (after its NAT)
    registered: bool = False
    media: str | None = None


class Supernode:
    def __init__(self, sn_id: str, address: str, verifier: TokenVerifier,
                 settings: SupernodeSettings, metrics: PeerMetrics,
                 peers: Callable[[], list[str]],
                 on_drop_role: Callable[[], None] | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 guard: ConnectionGuard | None = None) -> None:
        self.sn_id = sn_id
        self.address = address
        self.verifier = verifier
        self.settings = settings
        self.metrics = metrics
        self.peers = peers  # other supernodes' ip:port, for lookups and JOIN_OK caches
        self.on_drop_role = on_drop_role
        self.clock = clock
        self.children: dict[str, Child] = {}
        self.admission = Admission(rate=settings.joins_per_second, queue_max=0)
        self.relays = Relays(address, metrics)
        self.servers: list[GuardedServer] = []
        self.udp: asyncio.DatagramTransport | None = None
        self._overloaded_since: float | None = None
        self._join_times: list[float] = []
        self._callers: dict[str, tuple[str, int]] = {}
        self.active = False
        self.guard = guard or ConnectionGuard(
            metrics, RateLimitedLog(logging.getLogger("testbed.peer.supernode")))

    # --- lifecycle ------------------------------------------------------------------
    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        for port in (self.settings.port, *self.settings.extra_tcp_ports):
            self.servers.append(await self.guard.serve(
                self.handle, self.address, port, queue=1024))
        self.udp, _ = await loop.create_datagram_endpoint(
            lambda: _UdpProtocol(self), local_addr=(self.address, self.settings.port))
        self.relays.start()
        self.active = True
        self.metrics.set_role("supernode")
        self.metrics.logged_in.set(1)

    async def stop(self) -> None:
        self.active = False
        for server in self.servers:
            server.close()
        if self.udp:
            self.udp.close()
        for child in list(self.children.values()):
            child.writer.close()
        self.relays.close()
        self.children.clear()
        self.servers.clear()
        self.guard.close()
        self.metrics.sn_children.set(0)

    def load(self) -> float:
        return len(self.children) / max(1, self.settings.max_children)

    # --- TCP ------------------------------------------------------------------------
    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        child: Child | None = None
        peer = writer.get_extra_info("peername") or ("?", 0)
        try:
            async for frame in self.guard.frames(reader):
                if not self.active:
                    break
                child = await self._on_tcp(frame, writer, child, f"{peer[0]}:{peer[1]}")
                await writer.drain()  # a client that never reads is held back by TCP
        except ProtocolError as exc:
            self.guard.count(exc)
        except OversizeError:
            self._answer_too_big()
        except ConnectionError:
            pass
        finally:
            if child and self.children.get(child.user) is child:
                del self.children[child.user]
                self.metrics.sn_children.set(len(self.children))
            writer.close()

    async def _on_tcp(self, frame: Frame, writer: asyncio.StreamWriter, child: Child | None,
                      address: str) -> Child | None:
        kind, p = frame.type, frame.payload
        if kind is MessageType.PROBE:
            writer.write(self._probe_ack(p, address))
        elif kind is MessageType.JOIN and child is None:
            return self._join(str(p["user"]), writer, address)
        elif kind is MessageType.REGISTER and child is not None:
            session = self.verifier.verify(p["token"])
            if session is None or session.user != child.user:
                self.metrics.protocol_errors.labels(reason="unauthenticated").inc()
                writer.close()
                return child
            child.registered = True
            child.media = str(p.get("media") or "") or None
            writer.write(encode(MessageType.REGISTERED, {"user": child.user}))
        elif kind is MessageType.KEEPALIVE:
            writer.write(encode(MessageType.KEEPALIVE_ACK, {"seq": p["seq"]}))
        elif kind is MessageType.LOOKUP and child is not None and child.registered:
            result = await self.lookup(str(p["user"]), ttl=1)
            self.metrics.lookups.labels(result="found" if result["found"] else "missing").inc()
            writer.write(encode(MessageType.LOOKUP_RESULT, result))
        elif kind is MessageType.RELAY and child is not None and child.registered:
            answer = await self._relay(str(p["call"]))
            if answer is not None:
                writer.write(encode(MessageType.RELAY_OK, answer))
        elif kind is MessageType.CALL_OK and child is not None and child.registered:
            self._answer_caller(p)
        else:
            self.metrics.protocol_errors.labels(reason="unexpected").inc()
        return child

    def _probe_ack(self, payload: dict[str, object], seen: str = "") -> bytes:
        """Like STUN, tell the prober which address:port its packets come from."""
        return encode(MessageType.PROBE_ACK, {"nonce": payload["nonce"], "sn": self.sn_id,
                                              "load": round(self.load(), 3), "seen": seen})

    def _join(self, user: str, writer: asyncio.StreamWriter, address: str) -> Child | None:
        now = self.clock()
        self._join_times = [t for t in self._join_times if t > now - 1.0] + [now]
        if self._overloaded(now):
            return None
        full = len(self.children) >= self.settings.max_children
        others = [p for p in self.peers() if p != f"{self.address}:{self.settings.port}"]
        if full or self.admission.offer(now) == "reject":
            self.metrics.sn_joins.labels(result="busy").inc()
            writer.write(encode(MessageType.BUSY, {
                "retry_after": self.settings.overload.retry_after,
                "reason": "supernode full" if full else "too many joins",
                "cache": others[:8]}))
            return None
        old = self.children.pop(user, None)
        if old:
            old.writer.close()
        child = Child(user, writer, address)
        self.children[user] = child
        self.metrics.sn_joins.labels(result="ok").inc()
        self.metrics.sn_children.set(len(self.children))
        writer.write(encode(MessageType.JOIN_OK, {"sn": self.sn_id, "cache": others[:8]}))
        return child

    def _overloaded(self, now: float) -> bool:
        """drop-role: above threshold x nominal join load for `sustain` s, quit the role."""
        policy = self.settings.overload
        if policy.behaviour != "drop-role":
            return False
        if len(self._join_times) > policy.threshold * self.settings.joins_per_second:
            self._overloaded_since = self._overloaded_since or now
            if now - self._overloaded_since >= policy.sustain:
                self.metrics.sn_joins.labels(result="dropped-role").inc()
                asyncio.get_running_loop().create_task(self._drop_role())
                return True
        else:
            self._overloaded_since = None
        return False

    async def _drop_role(self) -> None:
        await self.stop()
        if self.on_drop_role:
            self.on_drop_role()

    # --- lookups across the supernode overlay -----------------------------------------
    async def lookup(self, user: str, ttl: int) -> dict[str, object]:
        child = self.children.get(user)
        if child and child.registered:
            return {"user": user, "found": True, "addr": child.media or child.address,
                    "sn": f"{self.address}:{self.settings.port}"}
        if ttl > 0:
            answers = await asyncio.gather(*(self._ask(peer, user, ttl - 1)
                                             for peer in self.peers()[:16]))
            for answer in answers:
                if answer and answer.get("found"):
                    return answer
        return {"user": user, "found": False}

    async def _ask(self, peer: str, user: str, ttl: int) -> dict[str, object] | None:
        host, _, port = peer.rpartition(":")
        if f"{host}:{port}" == f"{self.address}:{self.settings.port}":
            return None
        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setblocking(False)
        try:
            await loop.sock_connect(sock, (host, int(port)))
            await loop.sock_sendall(sock, encode(MessageType.LOOKUP, {"user": user, "ttl": ttl}))
            data = await asyncio.wait_for(loop.sock_recv(sock, 65536), 1.0)
            frame = decode_datagram(data)
            return frame.payload if frame.type is MessageType.LOOKUP_RESULT else None
        except (OSError, TimeoutError, ProtocolError):
            return None
        finally:
            sock.close()

    # --- relays (relays.py): only for calls signalled here ---------------------------
    async def _relay(self, call: str) -> dict[str, object] | None:
        port = await self.relays.port_for(call)
        return None if port is None else {"call": call, "relay": f"{self.address}:{port}"}

    # --- call signalling: caller -> callee's SN (UDP) -> callee (TCP) and back ----------
    def _forward_call(self, payload: dict[str, object], source: tuple[str, int]) -> None:
        callee = self.children.get(str(payload["to"]))
        if callee is None or not callee.registered:
            self.metrics.calls_failed.labels(reason="callee-offline", side="supernode").inc()
            return
        self._callers[str(payload["call"])] = source
        self.relays.signalled(str(payload["call"]))
        forwarded = {**payload, "seen": f"{source[0]}:{source[1]}"}
        callee.writer.write(encode(MessageType.CALL, forwarded))

    def _answer_caller(self, payload: dict[str, object]) -> None:
        caller = self._callers.pop(str(payload["call"]), None)
        if caller and self.udp:
            self.udp.sendto(encode(MessageType.CALL_OK, payload), caller)

    async def _relay_by_datagram(self, payload: dict[str, object],
                                 source: tuple[str, int]) -> None:
        answer = await self._relay(str(payload["call"]))
        if answer is not None and self.udp:
            try:
                self.udp.sendto(encode(MessageType.RELAY_OK, answer), source)
            except OversizeError:
                self._answer_too_big()

    def _answer_too_big(self) -> None:
        """A request whose answer, echoing one of its fields, would be over the frame
        limit: dropped and counted like an oversized frame."""
        self.guard.count(ProtocolError("oversize", "its answer would exceed the limit"))

    # --- UDP ------------------------------------------------------------------------
    def on_datagram(self, data: bytes, source: tuple[str, int]) -> None:
        try:
            frame = decode_datagram(data)
        except ProtocolError as exc:
            self.guard.count(exc)
            return
        if self.udp is None:
            return
        try:
            self._on_udp(frame, source, self.udp)
        except OversizeError:
            self._answer_too_big()

    def _on_udp(self, frame: Frame, source: tuple[str, int],
                udp: asyncio.DatagramTransport) -> None:
        if frame.type is MessageType.PROBE:
            udp.sendto(self._probe_ack(frame.payload, f"{source[0]}:{source[1]}"), source)
        elif frame.type is MessageType.CALL:
            self._forward_call(frame.payload, source)
        elif frame.type is MessageType.RELAY:
            asyncio.get_running_loop().create_task(self._relay_by_datagram(frame.payload, source))
        elif frame.type is MessageType.LOOKUP:
            user = str(frame.payload["user"])
            child = self.children.get(user)
            found = child is not None and child.registered
            result: dict[str, object] = {"user": user, "found": found}
            if child and found:
                result.update(addr=child.media or child.address,
                              sn=f"{self.address}:{self.settings.port}")
            udp.sendto(encode(MessageType.LOOKUP_RESULT, result), source)
        else:
            self.metrics.protocol_errors.labels(reason="unexpected").inc()


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, sn: Supernode) -> None:
        self.sn = sn

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.sn.on_datagram(data, addr)
