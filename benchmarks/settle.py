"""When a teardown has really finished: not when `ip netns del` or `net.stop()` returns,
but when the kernel has freed what the lab held. Both sides are timed to this point.

Measured machine-wide (the kernel does not say which lab a freed namespace was), so
other work on a shared machine can move the baselines; the slack below absorbs that and
a side that does not settle within the timeout is reported as such, not as a number.
"""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

NAMESPACE_SLACK = 10  # net_namespace objects: other agents' labs come and go
MEMORY_SLACK_MB = 150  # page cache and other processes move MemAvailable too


def mem_available_mb() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) / 1024
    return 0.0


def live_namespaces() -> int:
    """Network namespaces the kernel still holds (named or not, being freed or not): the
    net_namespace slab's active objects. Mininet's hosts are unnamed namespaces, so
    /run/netns alone would not see them."""
    for line in Path("/proc/slabinfo").read_text().splitlines():
        if line.startswith("net_namespace "):
            return int(line.split()[1])
    return 0


def root_links() -> int:
    out = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    return len(out.splitlines())


@dataclass(frozen=True)
class Baseline:
    namespaces: int
    links: int
    available_mb: float

    @classmethod
    def now(cls) -> Baseline:
        return cls(live_namespaces(), root_links(), mem_available_mb())

    def reached(self) -> bool:
        return (live_namespaces() <= self.namespaces + NAMESPACE_SLACK
                and root_links() <= self.links
                and mem_available_mb() >= self.available_mb - MEMORY_SLACK_MB)


def wait_settled(baseline: Baseline, timeout: float = 180.0) -> float | None:
    """Seconds until namespace count, root links and MemAvailable are back (None: not
    within `timeout`)."""
    began = time.monotonic()
    while time.monotonic() - began < timeout:
        if baseline.reached():
            return time.monotonic() - began
        time.sleep(0.1)
    return None
