"""Client retry policies and supernode overload behaviour, as named, configurable objects.

`2007` is the login loop as measured (CALIBRATION.md, Baset & Schulzrinne): probe several
host-cache entries at once, UDP then TCP then TCP 80 then TCP 443, a fixed 5 s wait per
probe and 6 s between rounds, no jitter, never give up, reconnect at once.
`fixed` is what the metastable-failure literature recommends: one attempt at a time,
capped exponential backoff with full jitter, a retry token bucket, and honouring the
server's "busy, retry after N s".
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from typing import Literal

Transport = Literal["udp", "tcp", "tcp80", "tcp443"]
MEASURED_TRANSPORTS: tuple[Transport, ...] = ("udp", "tcp", "tcp80", "tcp443")


@dataclass(frozen=True)
class RetryPolicy:
    name: str
    parallel_probes: int = 1  # host-cache entries tried at once
    probe_timeout: float = 5.0  # wait for an answer to one probe
    login_timeout: float = 20.0  # wait for the login server's answer
    round_wait: float = 6.0  # pause after a failed round
    max_rounds: int | None = None  # None: never give up (clients were told to stay on)
    transports: tuple[Transport, ...] = MEASURED_TRANSPORTS
    backoff_base: float = 0.0  # 0: fixed waits; else base * 2**n, capped
    backoff_cap: float = 60.0
    full_jitter: bool = False  # sleep U(0, computed) instead of the computed value
    honour_retry_after: bool = False
    budget_capacity: int = 0  # 0: no retry budget
    budget_retry_cost: int = 5
    budget_timeout_cost: int = 10
    budget_success_refund: int = 1
    reconnect_delay: float = 0.0  # after losing the supernode
    keepalive: float = 5.0  # keep-alive interval; the supernode is lost after 2 missed

    def wait_after_failure(self, failures: int, rng: random.Random,
                           retry_after: float | None = None) -> float:
        """Seconds to wait after the `failures`-th failed round (1-based)."""
        if self.backoff_base > 0:
            wait = min(self.backoff_cap, self.backoff_base * 2 ** max(0, failures - 1))
        else:
            wait = self.round_wait
        if self.full_jitter:
            wait = rng.uniform(0, wait)
        if self.honour_retry_after and retry_after is not None:
            wait = max(wait, retry_after)
        return wait

    def with_time_scale(self, scale: float) -> RetryPolicy:
        """Compress every duration by `scale` (scenarios may run time faster)."""
        return replace(self, probe_timeout=self.probe_timeout * scale,
                       login_timeout=self.login_timeout * scale,
                       round_wait=self.round_wait * scale,
                       backoff_base=self.backoff_base * scale,
                       backoff_cap=self.backoff_cap * scale,
                       reconnect_delay=self.reconnect_delay * scale,
                       keepalive=self.keepalive * scale)


class RetryBudget:
    """Token bucket: retries and timeouts spend tokens, successes earn them back.

    With an empty bucket the client waits for its next success window instead of
    retrying, which caps the retry amplification a fleet can produce.
    """

    def __init__(self, policy: RetryPolicy) -> None:
        self.policy = policy
        self.tokens = policy.budget_capacity

    @property
    def enabled(self) -> bool:
        return self.policy.budget_capacity > 0

    def try_spend(self, timed_out: bool) -> bool:
        if not self.enabled:
            return True
        cost = self.policy.budget_timeout_cost if timed_out else self.policy.budget_retry_cost
        if self.tokens < cost:
            return False
        self.tokens -= cost
        return True

    def refund(self) -> None:
        if self.enabled:
            self.tokens = min(self.policy.budget_capacity,
                              self.tokens + self.policy.budget_success_refund)


POLICIES: dict[str, RetryPolicy] = {
    "2007": RetryPolicy(name="2007", parallel_probes=4),
    "fixed": RetryPolicy(
        name="fixed", parallel_probes=1, probe_timeout=5.0, backoff_base=1.0,
        backoff_cap=60.0, full_jitter=True, honour_retry_after=True, budget_capacity=500,
        reconnect_delay=1.0,
    ),
}

OverloadBehaviour = Literal["busy", "drop-role"]


@dataclass(frozen=True)
class OverloadPolicy:
    """What a supernode (or the login server) does when it is over capacity.

    `busy`: answer "busy, retry after N s" at once (shed load early).
    `drop-role`: the 2010 self-protection: above `threshold` x nominal join load for
    `sustain` seconds, stop being a supernode.
    """

    behaviour: OverloadBehaviour = "busy"
    retry_after: float = 10.0
    threshold: float = 2.0
    sustain: float = 10.0


def policy_named(name: str) -> RetryPolicy:
    try:
        return POLICIES[name]
    except KeyError:
        raise ValueError(f"unknown retry policy {name!r}; known: {', '.join(POLICIES)}"
                         ) from None
