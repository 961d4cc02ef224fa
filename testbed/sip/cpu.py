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


def namespace_pids(inode: int, proc: Path = Path("/proc")) -> set[int]:
    """Every process whose network namespace has this inode (a scan of /proc)."""
    found = set()
    for entry in proc.iterdir():
        if entry.name.isdigit():
            try:
                if os.stat(entry / "ns" / "net").st_ino == inode:
                    found.add(int(entry.name))
            except OSError:
                continue  # gone meanwhile
    return found


def cpu_seconds(pids: set[int], proc: Path = Path("/proc")) -> float | None:
    """utime + stime of these processes; None when one of them is gone (scan again)."""
    total = 0
    for pid in pids:
        try:
            fields = (proc / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)
    return total / TICKS


class NamespaceCpu:
    """CPU seconds of a namespace's processes; /proc is scanned only when its set of
    processes may have changed (one gone, or every `rescan` reads), not every second."""

    def __init__(self, netns: str, rescan: int = 10) -> None:
        self.netns = netns
        self.rescan = rescan
        self.pids: set[int] = set()
        self.reads = 0

    def read(self) -> float | None:
        inode = netns_inode(self.netns)
        if inode is None:
            return None
        self.reads += 1
        seconds = cpu_seconds(self.pids) if self.reads % self.rescan else None
        if seconds is None or not self.pids:
            self.pids = namespace_pids(inode)
            seconds = cpu_seconds(self.pids)
        return seconds
