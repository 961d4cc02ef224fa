"""The client's UDP media socket: public-mapping probes, call signalling datagrams, and
constant-bit-rate media streams with hole punching and relay fallback."""

from __future__ import annotations

import asyncio
import contextlib
import struct
from dataclasses import dataclass, field

from testbed.peer.wire import Frame, MessageType, ProtocolError, decode_datagram, encode

MEDIA_MAGIC = b"MD"
MEDIA_PACKET = 100  # bytes: 32 kbit/s at 40 packets/s
MEDIA_INTERVAL = 0.025


def _addr(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host, int(port)


@dataclass
class Stream:
    """One call's media as seen by this end."""

    call: str
    sent: int = 0
    received: int = 0
    relayed: bool = False
    sources: list[tuple[str, int]] = field(default_factory=list)


class MediaSocket(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.transport: asyncio.DatagramTransport | None = None
        self.waiters: dict[str, asyncio.Future[Frame]] = {}
        self.streams: dict[str, Stream] = {}

    @classmethod
    async def open(cls, address: str) -> MediaSocket:
        loop = asyncio.get_running_loop()
        _, protocol = await loop.create_datagram_endpoint(cls, local_addr=(address, 0))
        return protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if data[:2] == MEDIA_MAGIC and len(data) >= 18:
            stream = self.streams.get(data[2:18].decode(errors="replace"))
            if stream:
                stream.received += 1
                if addr not in stream.sources:
                    stream.sources.append(addr)
            return
        try:
            frame = decode_datagram(data)
        except ProtocolError:
            return
        key = str(frame.payload.get("nonce") or frame.payload.get("call") or "")
        waiter = self.waiters.pop(f"{frame.type.name}:{key}", None)
        if waiter and not waiter.done():
            waiter.set_result(frame)

    async def ask(self, to: str, message_type: MessageType, payload: dict[str, object],
                  answer: MessageType, key: str, timeout: float) -> Frame | None:
        """Send a datagram and wait for the matching answer (None on timeout)."""
        if self.transport is None:
            return None
        future: asyncio.Future[Frame] = asyncio.get_running_loop().create_future()
        self.waiters[f"{answer.name}:{key}"] = future
        self.transport.sendto(encode(message_type, payload), _addr(to))
        try:
            return await asyncio.wait_for(future, timeout)
        except TimeoutError:
            return None
        finally:
            self.waiters.pop(f"{answer.name}:{key}", None)

    async def stream(self, call: str, targets: list[str], seconds: float,
                     punch: float, relay: asyncio.Future[str | None] | None = None
                     ) -> Stream:
        """Send CBR media for `seconds`; reply to wherever the other end's media comes from.

        If nothing arrived after `punch` seconds and `relay` resolves to an address, the
        rest of the stream goes through the relay.
        """
        stream = self.streams.setdefault(call, Stream(call))
        loop = asyncio.get_running_loop()
        began = loop.time()
        destinations = [_addr(t) for t in targets if t]
        relayed = False
        seq = 0
        while loop.time() - began < seconds and self.transport is not None:
            if not relayed and not stream.received and loop.time() - began >= punch and relay:
                relay_addr = await relay
                if relay_addr:
                    destinations, relayed = [_addr(relay_addr)], True
            for dest in {*destinations, *([] if relayed else stream.sources)}:
                packet = MEDIA_MAGIC + call.encode()[:16].ljust(16, b"-") + struct.pack(
                    ">I", seq)
                self.transport.sendto(packet.ljust(MEDIA_PACKET, b"\0"), dest)
                stream.sent += 1
            seq += 1
            await asyncio.sleep(MEDIA_INTERVAL)
        stream.relayed = relayed
        return stream

    def close(self) -> None:
        if self.transport:
            self.transport.close()
        for waiter in self.waiters.values():
            with contextlib.suppress(asyncio.InvalidStateError):
                waiter.cancel()
