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
from collections.abc import Callable
from dataclasses import dataclass

from testbed.peer.auth import login_proof
from testbed.peer.hostcache import HostCache
from testbed.peer.media import MediaSocket, Stream
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

PUNCH_SECONDS = 2.0  # direct media must arrive within this, else relay
ANSWER_SECONDS = 60.0  # how long a callee streams when the CALL does not say (protocol v1)
LONGEST_CALL = 3600.0  # a CALL asking for more (or for nonsense) gets the default
TCP_PORTS: dict[Transport, int | None] = {"tcp": None, "tcp80": 80, "tcp443": 443}


@dataclass
class Attempt:
    """Why a login attempt ended without success (for metrics and backoff)."""

    reason: str
    retry_after: float | None = None


class Connection:
    """A framed TCP connection. Once attached, a reader task routes unsolicited CALLs to
    a handler and everything else to whoever waits in request()."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.decoder = StreamDecoder()
        self.frames: list[Frame] = []
        self.replies: asyncio.Queue[Frame | None] | None = None
        self.lock = asyncio.Lock()

    async def request(self, message: bytes, timeout: float) -> Frame:
        async with self.lock:
            self.writer.write(message)
            await self.writer.drain()
            if self.replies is None:
                return await asyncio.wait_for(self.next_frame(), timeout)
            frame = await asyncio.wait_for(self.replies.get(), timeout)
            if frame is None:
                raise ConnectionError("closed by peer")
            return frame

    async def next_frame(self) -> Frame:
        while not self.frames:
            data = await self.reader.read(4096)
            if not data:
                raise ConnectionError("closed by peer")
            self.frames.extend(self.decoder.feed(data))
        return self.frames.pop(0)

    def dispatch(self, on_call: Callable[[Frame], None]) -> asyncio.Task[None]:
        self.replies = asyncio.Queue()

        async def read() -> None:
            assert self.replies is not None
            try:
                while True:
                    frame = await self.next_frame()
                    if frame.type is MessageType.CALL:
                        on_call(frame)
                    else:
                        self.replies.put_nowait(frame)
            except (OSError, ConnectionError, ProtocolError):
                self.replies.put_nowait(None)

        return asyncio.get_running_loop().create_task(read())

    def send(self, message: bytes) -> None:
        if not self.writer.is_closing():
            self.writer.write(message)

    def close(self) -> None:
        self.writer.close()


class Client:
    def __init__(self, *, user: str, password: str, login_server: str, cache: HostCache,
                 policy: RetryPolicy, metrics: PeerMetrics, rng: random.Random,
                 proxy: str | None = None, address: str = "0.0.0.0") -> None:
        self.user, self.password = user, password
        self.login_server = login_server
        self.cache = cache
        self.policy = policy
        self.metrics = metrics
        self.rng = rng
        self.proxy = proxy
        self.budget = RetryBudget(policy)
        self.address = address
        self.attached: Connection | None = None
        self.attached_to: str | None = None
        self.media: MediaSocket | None = None
        self.media_seen = ""
        self._reader: asyncio.Task[None] | None = None
        self._calls: set[asyncio.Task[dict[str, object]]] = set()
        metrics.set_role("client")
        metrics.host_cache.set(len(cache.entries))

    async def run(self) -> None:
        if self.media is None and not self.proxy:
            self.media = await MediaSocket.open(self.address)
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
        """One login round. Several host-cache entries are UDP-probed at once (policy 2007);
        supernodes that answered are joined first, in answer order, then the others over
        TCP, TCP 80 and TCP 443 (a client joins one supernode at a time)."""
        candidates = self.cache.pick(self.policy.parallel_probes)
        if not candidates:
            return Attempt("no-supernode")
        answered: dict[str, bool] = {}
        if len(candidates) > 1 and not self.proxy and "udp" in self.policy.transports:
            answered = await self._probe_all(candidates)
            candidates = sorted(candidates, key=lambda sn: not answered.get(sn))
        last = Attempt("timeout")
        for sn in candidates:
            result = await self.attempt(sn, answered.get(sn))
            if isinstance(result, Connection):
                return result
            last = result
        return last

    async def _probe_all(self, candidates: list[str]) -> dict[str, bool]:
        async def probe(sn: str) -> tuple[str, bool]:
            host, _, port = sn.rpartition(":")
            self.metrics.login_attempts.labels(transport="udp").inc()
            ok = await self._udp_probe(host, int(port))
            if not ok:
                self.metrics.login_failures.labels(reason="udp-timeout").inc()
            return sn, ok

        return dict(await asyncio.gather(*(probe(sn) for sn in candidates)))

    async def attempt(self, sn: str, udp_answered: bool | None = None) -> Connection | Attempt:
        """Try one supernode: UDP probe, then TCP joins. `udp_answered` says how a probe
        already sent this round went (None: none was sent)."""
        host, _, port_text = sn.rpartition(":")
        port = int(port_text)
        last = Attempt("timeout")
        for transport in self.policy.transports:
            if transport == "udp":
                if self.proxy or udp_answered is False:
                    continue  # a proxy-only site passes no UDP; or it timed out already
                if udp_answered is None:
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
            if result.reason != "timeout":
                return result  # this transport got through: trying others would not help
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
        # A CONNECT given up on must be closed: left open, it holds one of the proxy's
        # connection slots (tinyproxy's MaxClients) until the proxy's own timeout, and a
        # client retrying every second fills the proxy for good.
        try:
            writer.write(f"CONNECT {host}:{port} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n"
                         .encode())
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
        except BaseException:
            writer.close()
            raise
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
            self.media_seen = await self._media_mapping(sn)
            registered = await conn.request(
                encode(MessageType.REGISTER, {"token": token, "media": self.media_seen}),
                timeout)
            if registered.type is not MessageType.REGISTERED:
                conn.close()
                return Attempt("refused")
        except (OSError, TimeoutError, ConnectionError, ProtocolError):
            conn.close()
            return Attempt("timeout")
        self.attached, self.attached_to = conn, sn
        self._reader = conn.dispatch(self._on_call)
        return conn

    async def _media_mapping(self, sn: str) -> str:
        """The media socket's public address, as the supernode sees it."""
        if self.media is None:
            return ""
        nonce = uuid.uuid4().hex
        ack = await self.media.ask(sn, MessageType.PROBE, {"nonce": nonce},
                                   MessageType.PROBE_ACK, nonce, self.policy.probe_timeout)
        return str(ack.payload.get("seen") or "") if ack else ""

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
            reply = await conn.request(message, self.policy.login_timeout)
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
                await asyncio.sleep(self.policy.keepalive)
                seq += 1
                reply = await conn.request(encode(MessageType.KEEPALIVE, {"seq": seq}),
                                           self.policy.keepalive * 2)
                if reply.type is not MessageType.KEEPALIVE_ACK:
                    break
        except (OSError, TimeoutError, ConnectionError, ProtocolError):
            pass
        finally:
            conn.close()
            self.attached = None
            if self._reader:
                self._reader.cancel()

    async def lookup(self, user: str) -> dict[str, object] | None:
        if self.attached is None:
            return None
        reply = await self.attached.request(encode(MessageType.LOOKUP, {"user": user, "ttl": 1}),
                                            5.0)
        return reply.payload if reply.type is MessageType.LOOKUP_RESULT else None

    # --- calls ----------------------------------------------------------------------
    def _punch(self) -> float:
        return max(0.5, PUNCH_SECONDS * self.policy.probe_timeout / 5.0)

    async def call(self, user: str, seconds: float) -> dict[str, object]:
        """Call `user`: signal through its supernode, media direct or else relayed."""
        if self.media is None or self.attached is None:
            self.metrics.calls_failed.labels(reason="offline", side="caller").inc()
            return {"ok": False, "reason": "offline"}
        found = await self.lookup(user)
        if not found or not found.get("found"):
            self.metrics.calls_failed.labels(reason="not-found", side="caller").inc()
            return {"ok": False, "reason": "not-found"}
        callee_sn = str(found["sn"])
        call = uuid.uuid4().hex[:16]
        ok = await self.media.ask(callee_sn, MessageType.CALL, {
            "call": call, "from": self.user, "to": user, "media": self.media_seen,
            "seconds": seconds},
            MessageType.CALL_OK, call, self.policy.probe_timeout)
        if ok is None:
            self.metrics.calls_failed.labels(reason="no-answer", side="caller").inc()
            return {"ok": False, "reason": "no-answer"}
        relay = asyncio.get_running_loop().create_task(self._relay_via_datagram(callee_sn, call,
                                                                                user))
        stream = await self.media.stream(call, [str(ok.payload["media"])], seconds,
                                         self._punch(), relay)
        return self._report(stream, "caller")

    def _on_call(self, frame: Frame) -> None:
        task = asyncio.get_running_loop().create_task(self._answer_call(frame))
        self._calls.add(task)
        task.add_done_callback(self._calls.discard)

    async def _answer_call(self, frame: Frame,
                           seconds: float = ANSWER_SECONDS) -> dict[str, object]:
        p = frame.payload
        call = str(p["call"])
        conn = self.attached
        if self.media is None or conn is None:
            return {"ok": False}
        conn.send(encode(MessageType.CALL_OK, {"call": call, "media": self.media_seen}))
        relay = asyncio.get_running_loop().create_task(self._relay_via_supernode(call))
        targets = [str(p.get("media") or ""), str(p.get("seen") or "")]
        stream = await self.media.stream(call, targets, _call_length(p.get("seconds"), seconds),
                                         self._punch(), relay)
        return self._report(stream, "callee")

    async def _relay_via_datagram(self, sn: str, call: str, to: str) -> str | None:
        assert self.media is not None
        await asyncio.sleep(self._punch())
        ok = await self.media.ask(sn, MessageType.RELAY, {"call": call, "to": to},
                                  MessageType.RELAY_OK, call, self.policy.probe_timeout)
        return str(ok.payload["relay"]) if ok else None

    async def _relay_via_supernode(self, call: str) -> str | None:
        await asyncio.sleep(self._punch())
        if self.attached is None:
            return None
        try:
            ok = await self.attached.request(encode(MessageType.RELAY, {"call": call,
                                                                        "to": ""}), 5.0)
        except (OSError, TimeoutError, ConnectionError):
            return None
        return str(ok.payload["relay"]) if ok.type is MessageType.RELAY_OK else None

    def _report(self, stream: Stream, side: str) -> dict[str, object]:
        sent, received, relayed = stream.sent, stream.received, stream.relayed
        if received:
            self.metrics.calls.labels(path="relayed" if relayed else "direct", side=side).inc()
        else:
            self.metrics.calls_failed.labels(reason="no-media", side=side).inc()
        return {"ok": bool(received), "path": "relayed" if relayed else "direct",
                "sent": sent, "received": received}


def _call_length(asked: object, default: float) -> float:
    """The `seconds` of a CALL from the network: a number in (0, LONGEST_CALL], else the
    default (a peer never streams for a length a stranger made up)."""
    if isinstance(asked, bool) or not isinstance(asked, (int, float)):
        return default
    return float(asked) if 0 < asked <= LONGEST_CALL else default
