"""A supernode's media relays over loopback: RELAY for a call it never signalled opens
nothing (a flood of them cannot take its descriptors), and the relay of a call it did
signal forwards media between the two ends and is closed once the media stops."""

from __future__ import annotations

import asyncio
import os
import socket

import pytest

from testbed.metrics.offline import free_port
from testbed.peer import relays
from testbed.peer.auth import TokenSigner, TokenVerifier
from testbed.peer.metrics import PeerMetrics
from testbed.peer.supernode import Supernode, SupernodeSettings
from testbed.peer.wire import Frame, MessageType, StreamDecoder, decode_datagram, encode


def _count(metrics: PeerMetrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


async def _supernode(signer: TokenSigner, metrics: PeerMetrics) -> Supernode:
    sn = Supernode("sn", "127.0.0.1", TokenVerifier(signer.public_bytes()),
                   SupernodeSettings(port=free_port(), extra_tcp_ports=()), metrics,
                   peers=list)
    await sn.start()
    return sn


async def _frame(reader: asyncio.StreamReader, decoder: StreamDecoder) -> Frame:
    while True:
        frames = decoder.feed(await asyncio.wait_for(reader.read(4096), 3))
        if frames:
            return frames[0]


def _udp() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(1)
    return sock


def test_relay_requests_for_calls_never_signalled_open_nothing() -> None:
    async def scenario() -> tuple[int, int, int, float]:
        metrics = PeerMetrics("sn")
        sn = await _supernode(TokenSigner.generate(), metrics)
        before = len(os.listdir("/proc/self/fd"))
        loop = asyncio.get_running_loop()
        sender = _udp()
        sender.setblocking(False)
        for i in range(2000):
            await loop.sock_sendto(sender, encode(MessageType.RELAY, {"call": f"c{i}",
                                                                      "to": "x"}),
                                   ("127.0.0.1", sn.settings.port))
            if i % 100 == 0:
                await asyncio.sleep(0.01)
        await asyncio.sleep(0.5)
        after = len(os.listdir("/proc/self/fd"))
        answers = 0
        while True:
            try:
                await asyncio.wait_for(loop.sock_recv(sender, 4096), 0.2)
                answers += 1
            except TimeoutError:
                break
        sender.close()
        unknown = _count(metrics, "peer_protocol_errors_total", reason="unknown-call")
        await sn.stop()
        return before, after, answers, unknown

    before, after, answers, unknown = asyncio.run(scenario())
    assert after - before <= 2, (before, after)  # before the fix: one socket each
    assert answers == 0
    assert unknown >= 100  # the kernel may drop some of the burst; each one read counts


def test_a_signalled_calls_relay_forwards_media_and_closes_once_it_stops(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(relays, "IDLE_S", 0.3)

    async def scenario() -> tuple[bytes, bytes, bool, bool]:
        signer = TokenSigner.generate()
        sn = await _supernode(signer, PeerMetrics("sn"))
        port = sn.settings.port
        reader, writer = await asyncio.open_connection("127.0.0.1", port)  # the callee
        decoder = StreamDecoder()
        writer.write(encode(MessageType.JOIN, {"user": "bob"}))
        assert (await _frame(reader, decoder)).type is MessageType.JOIN_OK
        writer.write(encode(MessageType.REGISTER, {"token": signer.issue("bob")}))
        assert (await _frame(reader, decoder)).type is MessageType.REGISTERED
        caller, callee = _udp(), _udp()
        caller.sendto(encode(MessageType.CALL, {"call": "k1", "from": "eve", "to": "bob",
                                                "media": "127.0.0.1:9"}),
                      ("127.0.0.1", port))
        assert (await _frame(reader, decoder)).payload["call"] == "k1"  # forwarded
        caller.sendto(encode(MessageType.RELAY, {"call": "k1", "to": "bob"}),
                      ("127.0.0.1", port))
        answer = await asyncio.get_running_loop().run_in_executor(None, caller.recv, 4096)
        host, _, relay_port = decode_datagram(answer).payload["relay"].rpartition(":")
        relay = (host, int(relay_port))
        caller.sendto(b"from caller", relay)  # the first two senders are the ends
        await asyncio.sleep(0.05)
        callee.sendto(b"from callee", relay)
        await asyncio.sleep(0.1)  # the event loop forwards (the sockets here block)
        got_caller = caller.recv(100)
        caller.sendto(b"again", relay)
        await asyncio.sleep(0.1)
        got_callee = callee.recv(100)
        was_open = bool(sn.relays.open)
        await asyncio.sleep(0.3 + 0.3 / 3 + 0.3)  # idle, then one sweep at most
        probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            probe.bind(relay)  # the relay's port is free again: its socket was closed
            closed = True
        except OSError:
            closed = False
        finally:
            probe.close()
        for sock in (caller, callee):
            sock.close()
        writer.close()
        await sn.stop()
        return got_caller, got_callee, was_open, closed

    got_caller, got_callee, was_open, closed = asyncio.run(scenario())
    assert (got_caller, got_callee) == (b"from callee", b"again")
    assert was_open and closed
