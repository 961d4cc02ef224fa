"""The login server over real loopback sockets: logins, denials, replays, overload, junk."""

from __future__ import annotations

import asyncio
import time
import uuid

from prometheus_client import CollectorRegistry

from testbed.peer.auth import TokenSigner, TokenVerifier, login_proof
from testbed.peer.login_server import LoginServer, LoginSettings
from testbed.peer.metrics import PeerMetrics
from testbed.peer.wire import HEADER, MAGIC, VERSION, Frame, MessageType, StreamDecoder, encode

USERS = {"alice": "pw-a", "bob": "pw-b"}


def _value(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, labels) or 0.0


def _login(user: str, password: str, nonce: str | None = None, ts: float | None = None
           ) -> bytes:
    ts = time.time() if ts is None else ts
    nonce = nonce or uuid.uuid4().hex
    return encode(MessageType.LOGIN, {"user": user, "ts": ts, "nonce": nonce,
                                      "proof": login_proof(password, user, ts, nonce)})


async def _exchange(port: int, data: bytes, timeout: float = 1.0) -> Frame | None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    await writer.drain()
    decoder = StreamDecoder()
    try:
        while True:
            chunk = await asyncio.wait_for(reader.read(4096), timeout)
            if not chunk:
                return None
            frames = decoder.feed(chunk)
            if frames:
                return frames[0]
    except TimeoutError:
        return None
    finally:
        writer.close()


def _run(settings: LoginSettings, scenario):
    async def main():
        signer = TokenSigner.generate()
        metrics = PeerMetrics("login")
        server = LoginServer(USERS, signer, settings, metrics)
        listener = await server.serve("127.0.0.1", 0)
        port = listener.sockets[0].getsockname()[1]
        try:
            return await scenario(port, signer, metrics.registry)
        finally:
            listener.close()

    return asyncio.run(main())


def test_valid_login_gets_a_token_a_supernode_can_verify() -> None:
    async def scenario(port, signer, registry):
        reply = await _exchange(port, _login("alice", "pw-a"))
        assert reply is not None and reply.type is MessageType.LOGIN_OK
        session = TokenVerifier(signer.public_bytes()).verify(reply.payload["token"])
        assert session is not None and session.user == "alice"
        denied = await _exchange(port, _login("alice", "wrong"))
        assert denied is not None and denied.type is MessageType.LOGIN_FAIL
        assert _value(registry, "login_server_requests_total", result="ok") == 1
        assert _value(registry, "login_server_requests_total", result="denied") == 1

    _run(LoginSettings(), scenario)


def test_replayed_login_is_dropped_and_counted() -> None:
    async def scenario(port, signer, registry):
        message = _login("bob", "pw-b", nonce="same")
        first = await _exchange(port, message)
        again = await _exchange(port, message, timeout=0.3)
        assert first is not None and first.type is MessageType.LOGIN_OK
        assert again is None
        assert _value(registry, "peer_protocol_errors_total", reason="replayed") == 1

    _run(LoginSettings(), scenario)


def test_full_server_answers_busy_with_retry_after() -> None:
    async def scenario(port, signer, registry):
        replies = await asyncio.gather(*(_exchange(port, _login("alice", "pw-a"), 2.0)
                                          for _ in range(12)))
        kinds = [r.type for r in replies if r is not None]
        assert kinds.count(MessageType.BUSY) >= 5
        waits = [r.payload["retry_after"] for r in replies
                 if r is not None and r.type is MessageType.BUSY]
        # load-aware: at least the configured 7 s, spread by the refused backlog / rate
        assert all(7 <= w <= 7 + 12 / 2 for w in waits)
        assert len(set(waits)) > 1
        assert kinds.count(MessageType.LOGIN_OK) >= 2

    _run(LoginSettings(rate=2, queue=2, when_full="busy", retry_after=7), scenario)


def test_stalling_server_leaves_excess_clients_unanswered() -> None:
    async def scenario(port, signer, registry):
        replies = await asyncio.gather(*(_exchange(port, _login("alice", "pw-a"), 0.5)
                                          for _ in range(10)))
        assert sum(r is None for r in replies) >= 5
        assert not any(r is not None and r.type is MessageType.BUSY for r in replies)
        assert _value(registry, "login_server_requests_total", result="stalled") >= 5

    _run(LoginSettings(rate=2, queue=1, when_full="stall"), scenario)


def test_junk_is_counted_and_the_server_keeps_serving() -> None:
    async def scenario(port, signer, registry):
        for junk in (b"GET / HTTP/1.0\r\n\r\n", b"SK\x01\x20\x00\x00\x00\x05[1,2", b"\x00" * 50,
                     encode(MessageType.PROBE, {"nonce": 1})):
            await _exchange(port, junk, timeout=0.2)
        assert _value(registry, "peer_protocol_errors_total", reason="magic") >= 1
        assert _value(registry, "peer_protocol_errors_total", reason="unexpected") == 1
        huge = b'{"user": "u", "ts": ' + b"1" * 5000 + b', "nonce": "n", "proof": "p"}'
        await _exchange(port, HEADER.pack(MAGIC, VERSION, int(MessageType.LOGIN),
                                          len(huge)) + huge, timeout=0.2)
        assert _value(registry, "peer_protocol_errors_total", reason="malformed") == 1
        reply = await _exchange(port, _login("alice", "pw-a"))
        assert reply is not None and reply.type is MessageType.LOGIN_OK

    _run(LoginSettings(), scenario)
