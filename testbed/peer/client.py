"""The ordinary node: log in as measured, stay attached to a supernode, re-attach.

A login round takes host-cache entries (several at once with policy 2007) and for each
tries UDP, then TCP, TCP 80, TCP 443 to the supernode; after a JOIN_OK it logs in at the
login server and registers the session token with the supernode. Only then is the
client online. Clients on proxy-only sites reach everything through HTTP CONNECT.
"""

from __future__ import annotations

import asyncio
import random
import socket
import time
import uuid
from dataclasses import dataclass

from testbed.peer.auth import login_proof
from testbed.peer.hostcache import HostCache
from testbed.peer.metrics import PeerMetrics
from testbed.peer.policies import RetryBudget, RetryPolicy, Transport
from testbed.peer.wire import (
    Frame,
    MessageType,
    ProtocolError,
    StreamDecoder,
    decode_datagram,
    encode,
)

KEEPALIVE_INTERVAL = 5.0
TCP_PORTS: dict[Transport, int | None] = {"tcp": None, "tcp80": 80, "tcp443": 443}


@dataclass
class Attempt:
    """Why a login attempt ended without success (for metrics and backoff)."""

    reason: str
    retry_after: float | None = None


class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.decoder = StreamDecoder()
        self.frames: list[Frame] = []

    async def request(self, message: bytes, timeout: float) -> Frame:
        self.writer.write(message)
        await self.writer.drain()
        return await asyncio.wait_for(self.next_frame(), timeout)

    async def next_frame(self) -> Frame:
        while not self.frames:
            data = await self.reader.read(4096)
            if not data:
                raise ConnectionError("closed by peer")
            self.frames.extend(self.decoder.feed(data))
        return self.frames.pop(0)

    def close(self) -> None:
        self.writer.close()


class Client:
    def __init__(self, *, user: str, password: str, login_server: str, cache: HostCache,
                 policy: RetryPolicy, metrics: PeerMetrics, rng: random.Random,
                 proxy: str | None = None) -> None:
        self.user, self.password = user, password
        self.login_server = login_server
        self.cache = cache
        self.policy = policy
        self.metrics = metrics
        self.rng = rng
        self.proxy = proxy
        self.budget = RetryBudget(policy)
        self.attached: Connection | None = None
        self.attached_to: str | None = None
        metrics.set_role("client")
        metrics.host_cache.set(len(cache.entries))

    async def run(self) -> None:
        while True:
            await self.login()
            await self.stay_attached()
            self.metrics.logged_in.set(0)
            await asyncio.sleep(self.policy.reconnect_delay)

    # --- login ----------------------------------------------------------------------
    async def login(self) -> None:
        started = time.monotonic()
        failures = 0
        while True:
            outcome = await self.one_round()
            if isinstance(outcome, Connection):
                self.metrics.login_latency.observe(time.monotonic() - started)
                self.metrics.login_successes.inc()
                self.metrics.logged_in.set(1)
                self.budget.refund()
                return
            failures += 1
            if self.policy.max_rounds and failures >= self.policy.max_rounds:
                failures = 0
            wait = self.policy.wait_after_failure(failures, self.rng, outcome.retry_after)
            while not self.budget.try_spend(timed_out=outcome.reason == "timeout"):
                await asyncio.sleep(max(wait, 1.0))
                self.budget.refund()
            await asyncio.sleep(wait)

    async def one_round(self) -> Connection | Attempt:
        candidates = self.cache.pick(self.policy.parallel_probes)
        if not candidates:
            return Attempt("no-supernode")
        tasks = [asyncio.create_task(self.attempt(sn)) for sn in candidates]
        winner: Connection | None = None
        last = Attempt("timeout")
        for done in asyncio.as_completed(tasks):
            result = await done
            if isinstance(result, Connection) and winner is None:
                winner = result
                for task in tasks:
                    task.cancel()
                break
            if isinstance(result, Attempt):
                last = result
        for task in tasks:
            if task.done() and not task.cancelled():
                result = task.result()
                if isinstance(result, Connection) and result is not winner:
                    result.close()
        return winner or last

    async def attempt(self, sn: str) -> Connection | Attempt:
        host, _, port_text = sn.rpartition(":")
        port = int(port_text)
        last = Attempt("timeout")
        for transport in self.policy.transports:
            if transport == "udp":
                if self.proxy:
                    continue  # a proxy-only site passes no UDP
                self.metrics.login_attempts.labels(transport="udp").inc()
                if not await self._udp_probe(host, port):
                    self.metrics.login_failures.labels(reason="udp-timeout").inc()
                    continue
                transport = "tcp"
            else:
                self.metrics.login_attempts.labels(transport=transport).inc()
            tcp_port = TCP_PORTS.get(transport) or port
            result = await self._join(sn, host, tcp_port)
            if isinstance(result, Connection):
                self.cache.promote(sn)
                return result
            self.metrics.login_failures.labels(reason=result.reason).inc()
            last = result
            if result.reason == "busy":
                return result  # the supernode answered: no point in other transports
        return last

    async def _udp_probe(self, host: str, port: int) -> bool:
        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setblocking(False)
        nonce = uuid.uuid4().hex
        try:
            await loop.sock_connect(sock, (host, port))
            await loop.sock_sendall(sock, encode(MessageType.PROBE, {"nonce": nonce}))
            deadline = loop.time() + self.policy.probe_timeout
            while (left := deadline - loop.time()) > 0:
                data = await asyncio.wait_for(loop.sock_recv(sock, 65536), left)
                frame = decode_datagram(data)
                if frame.type is MessageType.PROBE_ACK and frame.payload["nonce"] == nonce:
                    return True
        except (OSError, TimeoutError, ProtocolError):
            return False
        finally:
            sock.close()
        return False

    async def _open(self, host: str, port: int) -> Connection:
        timeout = self.policy.probe_timeout
        if not self.proxy:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port),
                                                    timeout)
            return Connection(reader, writer)
        proxy_host, _, proxy_port = self.proxy.rpartition(":")
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(proxy_host, int(proxy_port)), timeout)
        writer.write(f"CONNECT {host}:{port} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode())
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
        if b" 200 " not in head.split(b"\r\n", 1)[0] + b" ":
            writer.close()
            raise ConnectionError(f"proxy refused: {head[:40]!r}")
        return Connection(reader, writer)

    async def _join(self, sn: str, host: str, port: int) -> Connection | Attempt:
        timeout = self.policy.probe_timeout
        try:
            conn = await self._open(host, port)
        except (OSError, TimeoutError, ConnectionError, asyncio.IncompleteReadError):
            return Attempt("timeout")
        try:
            reply = await conn.request(encode(MessageType.JOIN, {"user": self.user}), timeout)
            self._learn(reply)
            if reply.type is MessageType.BUSY:
                conn.close()
                return Attempt("busy", float(reply.payload["retry_after"]))
            if reply.type is not MessageType.JOIN_OK:
                conn.close()
                return Attempt("refused")
            token = await self._login_at_server()
            if isinstance(token, Attempt):
                conn.close()
                return token
            registered = await conn.request(encode(MessageType.REGISTER, {"token": token}),
                                            timeout)
            if registered.type is not MessageType.REGISTERED:
                conn.close()
                return Attempt("refused")
        except (OSError, TimeoutError, ConnectionError, ProtocolError):
            conn.close()
            return Attempt("timeout")
        self.attached, self.attached_to = conn, sn
        return conn

    def _learn(self, reply: Frame) -> None:
        """JOIN_OK and BUSY carry other supernodes' addresses: remember them."""
        for other in reply.payload.get("cache") or []:
            if isinstance(other, str) and ":" in other:
                self.cache.add(other)
        self.metrics.host_cache.set(len(self.cache.entries))

    async def _login_at_server(self) -> str | Attempt:
        host, _, port = self.login_server.rpartition(":")
        ts, nonce = time.time(), uuid.uuid4().hex
        message = encode(MessageType.LOGIN, {
            "user": self.user, "ts": ts, "nonce": nonce,
            "proof": login_proof(self.password, self.user, ts, nonce)})
        try:
            conn = await self._open(host, int(port))
        except (OSError, TimeoutError, ConnectionError, asyncio.IncompleteReadError):
            return Attempt("login-timeout")
        try:
            reply = await conn.request(message, self.policy.probe_timeout)
        except (OSError, TimeoutError, ConnectionError, ProtocolError):
            return Attempt("login-timeout")
        finally:
            conn.close()
        if reply.type is MessageType.LOGIN_OK:
            return str(reply.payload["token"])
        if reply.type is MessageType.BUSY:
            return Attempt("login-busy", float(reply.payload["retry_after"]))
        return Attempt("login-denied")

    # --- attached -------------------------------------------------------------------
    async def stay_attached(self) -> None:
        """Keep-alives until the supernode goes away."""
        conn = self.attached
        if conn is None:
            return
        seq = 0
        try:
            while True:
                await asyncio.sleep(KEEPALIVE_INTERVAL)
                seq += 1
                reply = await conn.request(encode(MessageType.KEEPALIVE, {"seq": seq}),
                                           KEEPALIVE_INTERVAL * 2)
                if reply.type is not MessageType.KEEPALIVE_ACK:
                    break
        except (OSError, TimeoutError, ConnectionError, ProtocolError):
            pass
        finally:
            conn.close()
            self.attached = None

    async def lookup(self, user: str) -> dict[str, object] | None:
        if self.attached is None:
            return None
        reply = await self.attached.request(encode(MessageType.LOOKUP, {"user": user, "ttl": 1}),
                                            5.0)
        return reply.payload if reply.type is MessageType.LOOKUP_RESULT else None
