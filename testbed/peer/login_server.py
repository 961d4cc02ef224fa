"""The login server: the only central part of the overlay.

Checks a user's proof against the provisioned credentials, refuses replays, and issues a
signed session token. Its capacity (logins/s and queue length) is set by the scenario;
when full it either answers "busy, retry after N s" at once or stalls (never answers),
the two behaviours the outage analysis compares.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from testbed.peer.admission import Admission
from testbed.peer.auth import ReplayGuard, TokenSigner, proof_ok
from testbed.peer.guard import ConnectionGuard, GuardedServer, RateLimitedLog
from testbed.peer.metrics import PeerMetrics
from testbed.peer.wire import Frame, MessageType, ProtocolError, encode

WhenFull = Literal["busy", "stall"]


@dataclass(frozen=True)
class LoginSettings:
    rate: float = 200.0  # logins per second it can process
    queue: int = 200  # requests that may wait
    when_full: WhenFull = "busy"
    retry_after: float = 10.0


class LoginServer:
    def __init__(self, users: dict[str, str], signer: TokenSigner, settings: LoginSettings,
                 metrics: PeerMetrics, clock: Callable[[], float] = time.monotonic,
                 guard: ConnectionGuard | None = None) -> None:
        self.users = users
        self.signer = signer
        self.settings = settings
        self.metrics = metrics
        self.clock = clock
        self.admission = Admission(rate=settings.rate, queue_max=settings.queue)
        self.replays = ReplayGuard()
        self.waiting: asyncio.Queue[tuple[Frame, asyncio.StreamWriter]] = asyncio.Queue()
        self._refused: deque[float] = deque()
        self.rng = random.Random(0)
        self.guard = guard or ConnectionGuard(
            metrics, RateLimitedLog(logging.getLogger("testbed.peer.login")))
        metrics.set_role("login")

    async def serve(self, host: str, port: int) -> GuardedServer:
        asyncio.get_running_loop().create_task(self._drain_queue())
        return await self.guard.serve(self.handle, host, port, queue=4096)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async for frame in self.guard.frames(reader):
                if frame.type is MessageType.LOGIN:
                    self._offer(frame, writer)
                else:
                    self.metrics.protocol_errors.labels(reason="unexpected").inc()
                # the next frame only once this answer is on its way: a client that
                # sends without reading is held back by TCP, never buffered without end
                await writer.drain()
        except ProtocolError as exc:
            self.guard.count(exc)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    def _offer(self, frame: Frame, writer: asyncio.StreamWriter) -> None:
        decision = self.admission.offer(self.clock())
        if decision == "now":
            self._answer(frame, writer)
        elif decision == "queue":
            self.waiting.put_nowait((frame, writer))
            self.metrics.server_queue.set(self.admission.queued)
        elif self.settings.when_full == "busy":
            self.metrics.server_requests.labels(result="busy").inc()
            _send(writer, encode(MessageType.BUSY, {"retry_after": self._retry_after(),
                                                    "reason": "login server full"}))
        else:
            self.metrics.server_requests.labels(result="stalled").inc()

    async def _drain_queue(self) -> None:
        while True:
            frame, writer = await self.waiting.get()
            if writer.is_closing():  # the client gave up while waiting: skip it
                self.admission.abandon()
                self.metrics.server_requests.labels(result="abandoned").inc()
                self.metrics.server_queue.set(self.admission.queued)
                continue
            while not self.admission.take_turn(self.clock()):
                await asyncio.sleep(self.admission.wait_for_turn(self.clock()))
            self.metrics.server_queue.set(self.admission.queued)
            self._answer(frame, writer)

    def _retry_after(self) -> float:
        """Spread the refused clients' retries over the time needed to serve them.

        The clients turned away during the last `retry_after` seconds estimate the backlog;
        each gets a retry time drawn from [retry_after, retry_after + backlog / rate].
        """
        now = self.clock()
        window = self.settings.retry_after
        self._refused.append(now)
        while self._refused and self._refused[0] < now - window:
            self._refused.popleft()
        spread = len(self._refused) / self.settings.rate
        return round(window + self.rng.uniform(0, spread), 3)

    def _answer(self, frame: Frame, writer: asyncio.StreamWriter) -> None:
        p = frame.payload
        user, nonce = str(p["user"]), str(p["nonce"])
        try:
            ts = float(p["ts"])
        except (TypeError, ValueError):
            self.metrics.protocol_errors.labels(reason="malformed").inc()
            return
        replay = self.replays.check(nonce, ts)
        if replay:
            self.metrics.protocol_errors.labels(reason=replay).inc()
            self.metrics.server_requests.labels(result="replayed").inc()
            return
        password = self.users.get(user)
        if password is None or not proof_ok(password, user, ts, nonce, str(p["proof"])):
            self.metrics.server_requests.labels(result="denied").inc()
            _send(writer, encode(MessageType.LOGIN_FAIL, {"reason": "bad credentials"}))
            return
        self.metrics.server_requests.labels(result="ok").inc()
        _send(writer, encode(MessageType.LOGIN_OK, {"token": self.signer.issue(user)}))


def _send(writer: asyncio.StreamWriter, data: bytes) -> None:
    if not writer.is_closing():
        writer.write(data)
