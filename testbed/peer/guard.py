"""What keeps a peer's TCP servers up under hostile connections, as a real internet server.

- A cap on connections per source address and on open connections in all, below the
  process's descriptor limit (whose soft value is raised to the hard one at start), so a
  flood of idle connections can never exhaust descriptors: the caps are applied at
  accept() (GuardedServer), and a connection over a cap is closed before the next one is
  accepted and counted (`peer_connections_refused_total{reason}`).
- A deadline for the first whole frame: a connection that says nothing (or too little)
  is closed and counted as a protocol error with reason `idle`.
- Rate-limited logging: one line per reason per interval, with how many were held back,
  so no flood can fill a disk with log lines.
- Should accept() still fail for want of descriptors (the machine's, or ones taken by
  outgoing connections), accepting pauses for a second (no busy loop) and the pause is
  logged through the limiter, as are the event loop's own errors: no traceback per
  occurrence.
Admission and the limiter are pure logic on an injected clock (unit-tested).
"""

from __future__ import annotations

import asyncio
import logging
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
ACCEPT_BATCH = 16  # connections accepted per wake-up of the listening socket
ACCEPT_PAUSE_S = 1.0  # accepting pauses this long when the process is out of descriptors

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

    async def serve(self, handler: Handler, host: str, port: int, queue: int,
                    reuse_address: bool = True) -> GuardedServer:
        """Listen on host:port (kernel accept queue `queue`) and run `handler` for every
        connection the caps admit. The caps are applied at accept(), before the
        connection reaches asyncio: a refused connection's descriptor is closed before
        the next one is accepted, so no burst can run the process out of descriptors."""
        loop = asyncio.get_running_loop()
        if self._flusher is None:
            self._flusher = loop.create_task(flush_periodically(self.log))
        listening = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET,
                                  socket.SOCK_STREAM)
        try:
            if reuse_address:
                listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listening.bind((host, port))
            listening.listen(queue)
            listening.setblocking(False)
        except OSError:
            listening.close()
            raise
        server = GuardedServer(self, listening, handler, loop)
        server.start()
        return server

    def admit(self, conn: socket.socket, source: str) -> bool:
        """Apply the caps to a just-accepted connection; a refused one is closed here."""
        refused = self.admission.admit(source)
        if refused is None:
            self.metrics.open_connections.set(self.admission.open)
            return True
        self.metrics.connections_refused.labels(reason=refused).inc()
        self.log.note(f"connection refused ({refused})",
                      f"{source} (open {self.admission.open}, from it "
                      f"{self.admission.sources[source]})")
        conn.close()  # the descriptor goes back before the next accept()
        return False

    def release(self, source: str) -> None:
        self.admission.release(source)
        self.metrics.open_connections.set(self.admission.open)

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


class GuardedServer:
    """A listening socket whose connections pass the guard's caps at accept() time;
    admitted ones become asyncio streams handed to the handler."""

    def __init__(self, guard: ConnectionGuard, listening: socket.socket, handler: Handler,
                 loop: asyncio.AbstractEventLoop) -> None:
        self.guard = guard
        self.sockets = [listening]
        self._listening = listening
        self._handler = handler
        self._loop = loop
        self._tasks: set[asyncio.Task[None]] = set()
        self._resume: asyncio.TimerHandle | None = None
        self._closed = False

    def start(self) -> None:
        self._loop.add_reader(self._listening.fileno(), self._accept_ready)

    def _accept_ready(self) -> None:
        for _ in range(ACCEPT_BATCH):
            try:
                conn, address = self._listening.accept()
            except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                return
            except OSError as exc:  # EMFILE/ENFILE/ENOBUFS: pause, never busy-loop
                self.guard.log.note("accept paused, out of resources",
                                    f"{type(exc).__name__}: {exc}")
                self._loop.remove_reader(self._listening.fileno())
                self._resume = self._loop.call_later(ACCEPT_PAUSE_S, self._resume_accepting)
                return
            source = str(address[0])
            if not self.guard.admit(conn, source):
                continue
            conn.setblocking(False)
            task = self._loop.create_task(self._run(conn, source))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _resume_accepting(self) -> None:
        self._resume = None
        if not self._closed:
            self.start()

    async def _run(self, conn: socket.socket, source: str) -> None:
        try:
            try:
                reader, writer = await asyncio.open_connection(sock=conn)
            except OSError:
                conn.close()
                return
            await self._handler(reader, writer)
        finally:
            self.guard.release(source)

    def close(self) -> None:
        """Stop listening (connections already admitted go on until they end)."""
        if self._closed:
            return
        self._closed = True
        if self._resume is not None:
            self._resume.cancel()
        self._loop.remove_reader(self._listening.fileno())
        self._listening.close()


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
