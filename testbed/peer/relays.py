"""A supernode's media relays: one UDP socket per relayed call, opened only for a call
this supernode signalled, and closed once no media has crossed it for a while.

Each relay is a descriptor, and RELAY may come over UDP from anyone: without these
bounds every RELAY datagram with a made-up call id opened a socket that was never
closed, until the supernode ran out of descriptors and accepted no more children.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from testbed.peer.metrics import PeerMetrics

IDLE_S = 30.0  # a relay no datagram crossed for this long is closed: its call is over
SIGNALLED_S = 120.0  # a forwarded CALL's relay may be asked for this long after
MAX_SIGNALLED = 4096  # calls remembered as signalled (the oldest are forgotten)
MAX_OPEN = 512  # relays open at once; more are refused (calls_failed relay-limit)


@dataclass
class Relay:
    """One relayed call: media between its two ends through a UDP socket."""

    last: float  # when a datagram last crossed (or the relay opened)
    ends: list[tuple[str, int]] = field(default_factory=list)
    transport: asyncio.DatagramTransport | None = None


class Relays:
    """The relays of one supernode, on its address."""

    def __init__(self, address: str, metrics: PeerMetrics,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.address = address
        self.metrics = metrics
        self.clock = clock
        self.open: dict[str, Relay] = {}
        self._ports: dict[str, asyncio.Future[int | None]] = {}
        self._signalled: OrderedDict[str, float] = OrderedDict()
        self._sweeper: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._sweeper = asyncio.get_running_loop().create_task(self._sweep())

    def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        for call in list(self.open):
            self._close(call)
        self._signalled.clear()

    def signalled(self, call: str) -> None:
        """This supernode forwarded the CALL: its ends may ask for a relay."""
        now = self.clock()
        self._signalled[call] = now
        self._signalled.move_to_end(call)
        while self._signalled and (len(self._signalled) > MAX_SIGNALLED
                                   or next(iter(self._signalled.values()))
                                   < now - SIGNALLED_S):
            self._signalled.popitem(last=False)

    async def port_for(self, call: str) -> int | None:
        """The relay's port for a call (one relay per call, even when both ends ask at
        the same moment); None, counted, when it is refused or cannot be opened."""
        pending = self._ports.get(call)
        if pending is None:
            if call not in self._signalled:
                self.metrics.protocol_errors.labels(reason="unknown-call").inc()
                return None
            if len(self.open) >= MAX_OPEN:
                self.metrics.calls_failed.labels(reason="relay-limit", side="supernode").inc()
                return None
            pending = asyncio.get_running_loop().create_future()
            self._ports[call] = pending
            pending.set_result(await self._open(call))
        return await pending

    async def _open(self, call: str) -> int | None:
        relay = Relay(self.clock())
        try:
            transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
                lambda: _RelayProtocol(relay, self.metrics, self.clock),
                local_addr=(self.address, 0))
        except OSError:  # out of descriptors, say: no relay, and the next ask tries again
            self.metrics.calls_failed.labels(reason="relay-failed", side="supernode").inc()
            del self._ports[call]
            return None
        relay.transport = transport
        self.open[call] = relay
        return int(transport.get_extra_info("sockname")[1])

    def _close(self, call: str) -> None:
        relay = self.open.pop(call, None)
        self._ports.pop(call, None)
        if relay is not None and relay.transport is not None:
            relay.transport.close()

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(IDLE_S / 3)
            now = self.clock()
            for call in [c for c, r in self.open.items() if now - r.last > IDLE_S]:
                self._close(call)


class _RelayProtocol(asyncio.DatagramProtocol):
    """Forwards every datagram from one end to the other (the first two senders are the
    ends)."""

    def __init__(self, relay: Relay, metrics: PeerMetrics, clock: Callable[[], float]
                 ) -> None:
        self.relay = relay
        self.metrics = metrics
        self.clock = clock

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        relay = self.relay
        ends = relay.ends
        if addr not in ends and len(ends) < 2:
            ends.append(addr)
        if addr not in ends or relay.transport is None:
            return
        relay.last = self.clock()
        for end in ends:
            if end != addr:
                relay.transport.sendto(data, end)
                self.metrics.relayed_bytes.inc(len(data))
