"""What the testbed remembers of a process it started: enough to find it again (and
never to hit another process that reused its pid)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class ProcessRecord:
    node: str  # "" for the lab's own helpers (the peer launcher, Prometheus, OVS)
    service: str
    pid: int
    start_time: int  # /proc/PID/stat field 22: tells a reused pid from ours
    namespace: str
    log: str
