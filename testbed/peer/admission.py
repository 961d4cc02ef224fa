"""Capacity of a server in the overlay: a rate (per second) and a bounded queue.

This is the knob scenarios turn to make the login server or a supernode the bottleneck.
Pure logic on an injected clock, so it is unit-tested exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Decision = Literal["now", "queue", "reject"]


@dataclass
class Admission:
    """Token bucket of `rate` per second (burst `burst`) in front of a queue of `queue_max`."""

    rate: float
    queue_max: int
    burst: float = 0.0
    tokens: float = 0.0
    queued: int = 0
    last: float = 0.0

    def __post_init__(self) -> None:
        if self.rate <= 0:
            raise ValueError("rate must be positive")
        self.burst = self.burst or max(1.0, self.rate)
        self.tokens = self.burst

    def _refill(self, now: float) -> None:
        if now > self.last:
            self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rate)
            self.last = now

    def offer(self, now: float) -> Decision:
        """A request arrives: serve it now, queue it, or reject it (queue full)."""
        self._refill(now)
        if self.queued == 0 and self.tokens >= 1.0:
            self.tokens -= 1.0
            return "now"
        if self.queued < self.queue_max:
            self.queued += 1
            return "queue"
        return "reject"

    def wait_for_turn(self, now: float) -> float:
        """Seconds until the head of the queue may be served."""
        self._refill(now)
        return 0.0 if self.tokens >= 1.0 else (1.0 - self.tokens) / self.rate

    def take_turn(self, now: float) -> bool:
        """Serve the head of the queue if a token is there."""
        self._refill(now)
        if self.queued and self.tokens >= 1.0:
            self.tokens -= 1.0
            self.queued -= 1
            return True
        return False

    def abandon(self) -> None:
        """A queued request went away (its client disconnected)."""
        self.queued = max(0, self.queued - 1)
