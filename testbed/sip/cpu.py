"""CPU time of every process in a node's network namespace, read from /proc.

The registrar's CPU is what its own statistics do not say (Kamailio counts messages,
not seconds). Its processes are found by their network namespace, so a reboot's new
Kamailio is found again without any pid bookkeeping; the sum is a counter that drops
when Kamailio restarts, which Prometheus's rate() treats as a reset.
"""

from __future__ import annotations

import os
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


def netns_inode(path: str) -> int | None:
    try:
        return os.stat(path).st_ino
    except OSError:
        return None


def cpu_seconds(inode: int, proc: Path = Path("/proc")) -> float:
    """utime + stime of the processes whose network namespace has this inode."""
    total = 0
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.stat(entry / "ns" / "net").st_ino != inode:
                continue
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)
    return total / TICKS
