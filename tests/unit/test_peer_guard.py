"""The peer's defences as pure logic: JSON depth, connection caps, rate-limited logging,
and, on loopback sockets, the first-frame deadline, accept() out of descriptors and
clients that never read their answers."""

from __future__ import annotations

import asyncio
import errno
import logging
import resource
import socket
import time
import uuid

import pytest

from testbed.metrics.offline import free_port
from testbed.peer import guard as guard_module
from testbed.peer.auth import TokenSigner, TokenVerifier
from testbed.peer.guard import (
    Admission,
    ConnectionGuard,
    ConnectionLimits,
    GuardedServer,
    RateLimitedLog,
    raise_nofile_limit,
)
from testbed.peer.login_server import LoginServer, LoginSettings
from testbed.peer.metrics import PeerMetrics
from testbed.peer.supernode import Supernode, SupernodeSettings
from testbed.peer.wire import (
    HEADER,
    MAGIC,
    MAX_DEPTH,
    VERSION,
    MessageType,
    ProtocolError,
    StreamDecoder,
    decode_datagram,
    encode,
    json_depth,
)


def frame(body: bytes, kind: MessageType = MessageType.LOGIN) -> bytes:
    return HEADER.pack(MAGIC, VERSION, int(kind), len(body)) + body


def test_deep_json_is_a_depth_error_not_a_recursion_error() -> None:
    deep = b"[" * 5000 + b"]" * 5000
    for decode in (decode_datagram, lambda d: StreamDecoder().feed(d)):
        with pytest.raises(ProtocolError) as caught:
            decode(frame(deep))
        assert caught.value.reason == "depth"


def test_depth_ignores_brackets_in_strings_and_allows_the_bound() -> None:
    assert json_depth(b'{"a": "' + b"[" * 100 + b'"}') <= 1
    at_bound = b"[" * MAX_DEPTH + b"]" * MAX_DEPTH
    assert json_depth(at_bound) <= MAX_DEPTH
    assert json_depth(b"[" + at_bound + b"]") == MAX_DEPTH + 1
    assert json_depth(b'{"a":"\\"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["}') == 1


def test_admission_caps_per_source_and_in_all() -> None:
    admission = Admission(per_source=2, max_open=3)
    assert admission.admit("10.0.0.1") is None
    assert admission.admit("10.0.0.1") is None
    assert admission.admit("10.0.0.1") == "per-source"
    assert admission.admit("10.0.0.2") is None
    assert admission.admit("10.0.0.3") == "open-limit"
    admission.release("10.0.0.1")
    assert admission.admit("10.0.0.3") is None
    assert admission.open == 3


def test_guard_cap_stays_below_the_descriptor_limit() -> None:
    guard = ConnectionGuard(PeerMetrics("n"), RateLimitedLog(logging.getLogger("t")),
                            fd_limit=1024)
    assert guard.admission.max_open == 1024 - 64


def test_raise_nofile_limit_reaches_the_hard_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(1024, hard), hard))
        assert raise_nofile_limit() == resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        if hard != resource.RLIM_INFINITY:
            assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] == hard
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_rate_limited_log_writes_one_line_per_reason_per_interval(
        caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    log = RateLimitedLog(logging.getLogger("t.rl"), interval=10.0, clock=lambda: now[0])
    with caplog.at_level(logging.INFO, logger="t.rl"):
        for _ in range(1000):
            log.note("too many open files")
        log.note("other reason")
        now[0] = 11.0
        log.note("too many open files")
        log.note("other reason")
        now[0] = 25.0
        log.flush()
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 4
    assert lines[2] == "too many open files (and 999 more in the last 11s)"
    assert lines[3] == "other reason"
    log.note("other reason")  # 25 s: a line
    now[0] = 26.0
    log.note("other reason")  # held back
    now[0] = 40.0
    log.flush()
    assert caplog.records[-1].getMessage() == "other reason: 1 more in the last 15s"


def test_a_silent_connection_is_closed_at_the_first_frame_deadline() -> None:
    async def scenario() -> tuple[list[str], float]:
        metrics = PeerMetrics("n")
        guard = ConnectionGuard(metrics, RateLimitedLog(logging.getLogger("t.g")),
                                ConnectionLimits(per_source=1, first_frame_s=0.3))
        reasons: list[str] = []

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter
                         ) -> None:
            try:
                async for _ in guard.frames(reader):
                    pass
            except ProtocolError as exc:
                reasons.append(exc.reason)
            writer.close()

        server = await guard.serve(handle, "127.0.0.1", 0, queue=16)
        port = server.sockets[0].getsockname()[1]
        loop = asyncio.get_running_loop()
        began = loop.time()
        idle = await asyncio.open_connection("127.0.0.1", port)
        second = await asyncio.open_connection("127.0.0.1", port)  # over per_source
        assert await asyncio.wait_for(second[0].read(), 2) == b""  # closed at once
        assert await asyncio.wait_for(idle[0].read(), 2) == b""  # closed at the deadline
        took = loop.time() - began
        for _, writer in (idle, second):
            writer.close()
        guard.close()
        server.close()
        refused = metrics.connections_refused.labels(reason="per-source")._value.get()
        return reasons + [f"refused={refused:g}"], took

    reasons, took = asyncio.run(scenario())
    assert reasons == ["idle", "refused=1"]
    assert 0.25 <= took < 2.0


class StarvedSocket(socket.socket):
    """A listening socket whose first `starved` accept() calls fail as a process out of
    descriptors sees it (EMFILE), however readable the socket is."""

    starved = 3
    calls = 0

    def accept(self) -> tuple[socket.socket, tuple[str, int]]:
        self.calls += 1
        if self.calls <= self.starved:
            raise OSError(errno.EMFILE, "Too many open files")
        return super().accept()


def test_accept_out_of_descriptors_pauses_instead_of_busy_looping(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """A connection waits in the kernel's queue while accept() fails: the server tries
    once per pause (not thousands of times a second), logs one line for it all, and
    serves the connection once descriptors are back."""
    monkeypatch.setattr(guard_module, "ACCEPT_PAUSE_S", 0.2)

    async def scenario() -> tuple[bytes, float, int]:
        metrics = PeerMetrics("n")
        guard = ConnectionGuard(metrics, RateLimitedLog(logging.getLogger("t.accept")),
                                ConnectionLimits(first_frame_s=5))

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter
                         ) -> None:
            async for _ in guard.frames(reader):
                writer.write(b"served")
                break
            writer.close()

        listening = StarvedSocket(socket.AF_INET, socket.SOCK_STREAM)
        listening.bind(("127.0.0.1", 0))
        listening.listen(16)
        listening.setblocking(False)
        loop = asyncio.get_running_loop()
        server = GuardedServer(guard, listening, handle, loop)
        server.start()
        began = loop.time()
        reader, writer = await asyncio.open_connection(*listening.getsockname())
        writer.write(frame(b'{"seq": 1}', MessageType.KEEPALIVE))
        reply = await asyncio.wait_for(reader.read(), 5)
        took = loop.time() - began
        writer.close()
        server.close()
        guard.close()
        return reply, took, listening.calls

    with caplog.at_level(logging.INFO, logger="t.accept"):
        reply, took, calls = asyncio.run(scenario())
    assert reply == b"served"
    assert took >= 3 * 0.2 - 0.05  # three pauses, one per failed accept()
    assert calls <= StarvedSocket.starved + 3, calls  # no busy loop meanwhile
    lines = [r.getMessage() for r in caplog.records]
    assert lines == ["accept paused, out of resources: OSError: [Errno 24] Too many open "
                     "files"], lines  # the other two held back by the limiter


async def _greedy(port: int, message: bytes) -> int:
    """Send `message` over and over without ever reading an answer; the bytes the
    server let in before TCP held the sender back for a second (at most 8 MB)."""
    loop = asyncio.get_running_loop()
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16384)
    sock.setblocking(False)
    sent = 0
    try:
        await loop.sock_connect(sock, ("127.0.0.1", port))
        chunk = message * (65536 // len(message))
        while sent < 8 * 2**20:
            await asyncio.wait_for(loop.sock_sendall(sock, chunk), 1.0)
            sent += len(chunk)
    except TimeoutError:
        pass
    finally:
        sock.close()
    return sent


async def _answered(port: int, message: bytes) -> bool:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(message)
    try:
        return bool(await asyncio.wait_for(reader.read(4096), 3))
    finally:
        writer.close()


@pytest.mark.parametrize("role", ["login", "supernode"])
def test_a_client_that_never_reads_its_answers_is_held_back_not_buffered(role: str
                                                                         ) -> None:
    """A client pipelining requests without reading an answer: a server reads the next
    frame only once its last answer is on its way, so TCP stops the client after a few
    buffers' worth instead of the server holding answers in memory without end."""
    def request() -> bytes:
        if role == "login":  # full at once: answered BUSY (or denied: an unknown user)
            return encode(MessageType.LOGIN, {"user": "u", "ts": time.time(),
                                              "nonce": uuid.uuid4().hex, "proof": "p"})
        return encode(MessageType.PROBE, {"nonce": "n"})  # answered PROBE_ACK

    async def scenario() -> tuple[int, bool]:
        metrics = PeerMetrics("n")
        signer = TokenSigner.generate()
        if role == "login":
            login = LoginServer({}, signer, LoginSettings(rate=1, queue=1), metrics)
            listener = await login.serve("127.0.0.1", 0)
        else:
            supernode = Supernode("sn", "127.0.0.1", TokenVerifier(signer.public_bytes()),
                                  SupernodeSettings(port=free_port(), extra_tcp_ports=()),
                                  metrics, peers=list)
            await supernode.start()
            listener = supernode.servers[0]
        for option in (socket.SO_RCVBUF, socket.SO_SNDBUF):  # inherited at accept()
            listener.sockets[0].setsockopt(socket.SOL_SOCKET, option, 16384)
        port = listener.sockets[0].getsockname()[1]
        sent = await _greedy(port, request())
        other = await _answered(port, request())
        if role == "login":
            listener.close()
            login.guard.close()
        else:
            await supernode.stop()
        return sent, other

    sent, other = asyncio.run(scenario())
    assert sent < 2 * 2**20, f"{sent} bytes taken from a client that never reads"
    assert other  # everyone else is still answered


def test_a_request_whose_answer_would_be_too_big_is_counted_not_an_uncaught_error(
        ) -> None:
    """A PROBE whose nonce (echoed in the PROBE_ACK) fills a whole frame: the answer
    cannot be framed. Over TCP and UDP the supernode counts it as `oversize` (closing
    the TCP connection) and nothing escapes to the event loop as an uncaught error."""
    async def scenario() -> tuple[bytes, float, list[str]]:
        loop = asyncio.get_running_loop()
        uncaught: list[str] = []
        loop.set_exception_handler(lambda _, context: uncaught.append(context["message"]))
        metrics = PeerMetrics("sn")
        supernode = Supernode("sn", "127.0.0.1",
                              TokenVerifier(TokenSigner.generate().public_bytes()),
                              SupernodeSettings(port=free_port(), extra_tcp_ports=()),
                              metrics, peers=list)
        await supernode.start()
        port = supernode.settings.port
        probe = encode(MessageType.PROBE, {"nonce": "x" * 16360})
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(probe)
        closed = await asyncio.wait_for(reader.read(100), 3)
        writer.close()
        udp, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol,
                                                     remote_addr=("127.0.0.1", port))
        udp.sendto(probe)
        await asyncio.sleep(0.3)
        udp.close()
        await supernode.stop()
        oversize = metrics.protocol_errors.labels(reason="oversize")._value.get()
        return closed, oversize, uncaught

    closed, oversize, uncaught = asyncio.run(scenario())
    assert closed == b""
    assert oversize == 2
    assert uncaught == []
