"""The overlay's compressed clock: `overlay.time_scale: s` is a change of clock, not of system.

Settings in a topology are in real-network units. On the lab's clock every duration of the
overlay is multiplied by s and every rate divided by s, so a login server that handles
4 logins per real second handles 20 per lab second at s = 0.2, while every retry also
comes 5x sooner: load relative to capacity, retries per timeout and the outcome's
dimensionless figures are those of the real-time system. Link rates are NOT scaled:
packets are real, and a 512 kbit/s ADSL line carries 512 kbit each lab second.

The tables below classify every overlay setting; a unit test fails when a setting is added
without saying how it scales, and docs/topology.md lists the same names.
"""

from __future__ import annotations

from dataclasses import dataclass

# `section.field` of the topology's overlay (and RetryPolicy for the client timers)
DURATIONS = (
    "login.retry_after", "supernode.min_uptime", "supernode.retry_after", "supernode.sustain",
    "policy.probe_timeout", "policy.login_timeout", "policy.round_wait",
    "policy.backoff_base", "policy.backoff_cap", "policy.reconnect_delay", "policy.keepalive",
)
RATES = ("login.rate", "supernode.joins_per_second")
UNSCALED = {
    "login.queue": "a count of waiting requests",
    "login.when_full": "a behaviour",
    "supernode.port": "a port",
    "supernode.max_children": "a count of clients",
    "supernode.min_bandwidth": "a link rate: packets are real",
    "supernode.overload": "a behaviour",
    "supernode.threshold": "a ratio of join load to nominal",
    "policy.name": "a name",
    "policy.parallel_probes": "a count",
    "policy.max_rounds": "a count",
    "policy.transports": "a list of transports",
    "policy.full_jitter": "a switch",
    "policy.honour_retry_after": "a switch",
    "policy.budget_capacity": "tokens (a count)",
    "policy.budget_retry_cost": "tokens (a count)",
    "policy.budget_timeout_cost": "tokens (a count)",
    "policy.budget_success_refund": "tokens (a count)",
    "overlay.policy": "a name",
    "overlay.time_scale": "the scale itself",
    "overlay.seed": "a seed",
    "overlay.sn_label": "a label",
    "overlay.login_port": "a port",
    "overlay.metrics_port": "a port",
    "overlay.warmup": "lab seconds: setting up the steady state, before any scenario",
    "overlay.login": "a section (its fields are listed)",
    "overlay.supernode": "a section (its fields are listed)",
}


@dataclass(frozen=True)
class LabClock:
    """Converts real-network durations and rates to the lab's clock."""

    scale: float = 1.0

    def __post_init__(self) -> None:
        if self.scale <= 0:
            raise ValueError(f"time_scale must be positive, not {self.scale}")

    def duration(self, seconds: float) -> float:
        """A real duration in lab seconds."""
        return seconds * self.scale

    def rate(self, per_second: float) -> float:
        """A real rate (events per real second) in events per lab second."""
        return per_second / self.scale

    def real_seconds(self, lab_seconds: float) -> float:
        """How long a lab interval stands for in the real network."""
        return lab_seconds / self.scale
