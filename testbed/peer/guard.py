"""What keeps a peer's TCP servers up under hostile connections, as a real internet server.

- A cap on connections per source address and on open connections in all, below the
  process's descriptor limit (whose soft value is raised to the hard one at start), so a
  flood of idle connections can never exhaust descriptors: a connection over a cap is
  closed at once and counted (`peer_connections_refused_total{reason}`).
- A deadline for the first whole frame: a connection that says nothing (or too little)
  is closed and counted as a protocol error with reason `idle`.
- Rate-limited logging: one line per reason per interval, with how many were held back,
  so no flood can fill a disk with log lines.
- The event loop's error handler goes through the same limiter: asyncio itself already
  pauses accepting for a second after EMFILE/ENFILE (no busy loop); each of those
  pauses is then counted, not logged with a traceback each time.
Admission and the limiter are pure logic on an injected clock (unit-tested).
"""

from __future__ import annotations

import asyncio
import logging
import os
import resource
import socket
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from testbed.peer.metrics import PeerMetrics
from testbed.peer.wire import Frame, ProtocolError, StreamDecoder

RESERVE_FDS = 64  # descriptors kept for everything but accepted connections
# Connections asyncio accepts per wake-up. A refused connection's descriptor is closed one
# loop turn later, so two batches can be in flight beyond the cap: 2 x 16 stays inside
# RESERVE_FDS with the server's own descriptors, and a flood never meets EMFILE.
ACCEPT_BATCH = 16

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def raise_nofile_limit() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard limit (where allowed); the soft limit now."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = max(soft, 1 << 20)
    if soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):
            pass
    return soft


async def start_guarded_server(handler: Handler, host: str, port: int, queue: int,
                               **kwargs: Any) -> asyncio.Server:
    """A TCP server whose kernel accept queue holds `queue` connections while asyncio
    takes them ACCEPT_BATCH at a time: asyncio accepts as many per wake-up as its
    backlog, so a backlog of thousands let one burst take thousands of descriptors
    before the guard could turn any away ("Too many open files" under a flood)."""
    server = await asyncio.start_server(handler, host, port, backlog=ACCEPT_BATCH, **kwargs)
    for wrapped in server.sockets:
        listening = socket.socket(fileno=os.dup(wrapped.fileno()))
        try:
            listening.listen(queue)  # the same socket: only its queue length changes
        finally:
            listening.close()
    return server


@dataclass(frozen=True)
class ConnectionLimits:
    per_source: int = 128  # a proxy-only site's clients all come from its proxy
    first_frame_s: float = 10.0
    max_open: int = 0  # 0: the descriptor limit minus RESERVE_FDS


class RateLimitedLog:
    """One line per reason per `interval` seconds; the lines held back are counted in
    the next line for that reason (or by flush())."""

    def __init__(self, logger: logging.Logger, interval: float = 10.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.logger = logger
        self.interval = interval
        self.clock = clock
        self._last: dict[str, float] = {}
        self._held: Counter[str] = Counter()

    def note(self, reason: str, detail: str = "", level: int = logging.WARNING) -> bool:
        """Log (True) or count (False) one occurrence of `reason`."""
        now = self.clock()
        last = self._last.get(reason)
        if last is not None and now - last < self.interval:
            self._held[reason] += 1
            return False
        held = self._held.pop(reason, 0)
        more = (f" (and {held} more in the last {now - last:.0f}s)"
                if held and last is not None else "")
        self.logger.log(level, "%s%s%s", reason, f": {detail}" if detail else "", more)
        self._last[reason] = now
        return True

    def flush(self) -> None:
        """Log the counts held back whose interval is over (called periodically)."""
        now = self.clock()
        for reason, held in list(self._held.items()):
            if now - self._last.get(reason, 0.0) >= self.interval:
                del self._held[reason]
                self.logger.warning("%s: %d more in the last %.0fs", reason, held,
                                    now - self._last[reason])
                self._last[reason] = now


@dataclass
class Admission:
    """Who may hold a connection: per source and in all (pure; no sockets)."""

    per_source: int
    max_open: int
    open: int = 0
    sources: Counter[str] = field(default_factory=Counter)

    def admit(self, source: str) -> str | None:
        """None if admitted (and counted), else the reason it is refused."""
        if self.open >= self.max_open:
            return "open-limit"
        if self.sources[source] >= self.per_source:
            return "per-source"
        self.open += 1
        self.sources[source] += 1
        return None

    def release(self, source: str) -> None:
        self.open -= 1
        self.sources[source] -= 1
        if self.sources[source] <= 0:
            del self.sources[source]


class ConnectionGuard:
    """Wraps a server's connection handler with the caps, and reads its frames with the
    first-frame deadline. One per process (the login server or a node's supernode)."""

    def __init__(self, metrics: PeerMetrics, log: RateLimitedLog,
                 limits: ConnectionLimits = ConnectionLimits(), fd_limit: int | None = None
                 ) -> None:
        fds = fd_limit if fd_limit is not None else resource.getrlimit(
            resource.RLIMIT_NOFILE)[0]
        cap = max(16, fds - RESERVE_FDS)
        self.limits = limits
        self.metrics = metrics
        self.log = log
        self.admission = Admission(limits.per_source,
                                   min(limits.max_open, cap) if limits.max_open else cap)
        self._flusher: asyncio.Task[None] | None = None

    def wrap(self, handler: Handler) -> Handler:
        """The handler behind the caps (call from the server's event loop)."""
        if self._flusher is None:
            self._flusher = asyncio.get_running_loop().create_task(
                flush_periodically(self.log))
        async def guarded(reader: asyncio.StreamReader, writer: asyncio.StreamWriter
                          ) -> None:
            peer = writer.get_extra_info("peername") or ("?", 0)
            refused = self.admission.admit(str(peer[0]))
            if refused:
                self.metrics.connections_refused.labels(reason=refused).inc()
                self.log.note(f"connection refused ({refused})",
                              f"{peer[0]} (open {self.admission.open}, from it "
                              f"{self.admission.sources[str(peer[0])]})")
                writer.transport.abort()  # the descriptor goes back at once
                return
            self.metrics.open_connections.set(self.admission.open)
            try:
                await handler(reader, writer)
            finally:
                self.admission.release(str(peer[0]))
                self.metrics.open_connections.set(self.admission.open)

        return guarded

    async def frames(self, reader: asyncio.StreamReader) -> AsyncIterator[Frame]:
        """Frames of a TCP stream; ProtocolError("idle") when no whole frame came within
        the deadline, ("truncated") when the stream ends inside a frame."""
        decoder = StreamDecoder()
        first = True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.limits.first_frame_s
        while True:
            if first:
                left = deadline - loop.time()
                try:
                    data = await asyncio.wait_for(reader.read(4096), max(0.0, left))
                except TimeoutError:
                    raise ProtocolError("idle", "no whole frame within "
                                        f"{self.limits.first_frame_s:g}s") from None
            else:
                data = await reader.read(4096)
            if not data:
                if decoder.pending():
                    raise ProtocolError("truncated")
                return
            for frame in decoder.feed(data):
                first = False
                yield frame

    def close(self) -> None:
        if self._flusher is not None:
            self._flusher.cancel()
            self._flusher = None

    def count(self, error: ProtocolError) -> None:
        """A dropped frame: the metric, and a rate-limited log line."""
        self.metrics.protocol_errors.labels(reason=error.reason).inc()
        self.log.note(f"protocol error ({error.reason})", str(error), logging.INFO)


def install_loop_handler(loop: asyncio.AbstractEventLoop, log: RateLimitedLog) -> None:
    """asyncio's own errors (accept out of descriptors, a broken transport) through the
    limiter: one line per kind per interval, no traceback per occurrence."""

    def handler(_: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        reason = context.get("message", "event loop error")
        log.note(reason, f"{type(exc).__name__}: {exc}" if exc else "")

    loop.set_exception_handler(handler)


async def flush_periodically(log: RateLimitedLog) -> None:
    while True:
        await asyncio.sleep(log.interval)
        log.flush()
