"""Whether this machine can hold a lab, checked before anything is created: a lab too big
fails late and unclearly otherwise (namespaces half built, "Exchange full", ARP replies
lost, Prometheus out of file descriptors, peers the OOM killer takes).

The per-node figures were measured on the project's machine kind (2 cores, 24 GB; see the
README's performance section) and are kept on the low side: the check refuses what cannot
work, it does not promise what can.
"""

from __future__ import annotations

import resource
import shutil
from dataclasses import dataclass
from pathlib import Path

from testbed.backends.host_limits import NEIGHBOURS_PER_NAMESPACE
from testbed.errors import BackendError
from testbed.plan.model import NetworkPlan

KERNEL_MB_PER_NAMESPACE = 0.45  # namespace, its veths, qdiscs, routes (MemAvailable drop)
MB_PER_PEER = 4.0  # a forked reference peer as it starts, before KSM has merged it
# (measured at 2,560 peers: ~4 MB each while starting, ~1.4 MB once merged)
RESERVE_MB = 512  # Prometheus, the launcher, the testbed itself
FDS_RESERVE = 1024  # what a Prometheus needs besides one socket per target
DISK_RESERVE_MB = 64  # the journal, configs and the bounded service logs beside the files


@dataclass(frozen=True)
class HostFacts:
    mem_available_mb: float
    nofile_hard: int
    neighbour_limit: int | None  # net.ipv4.neigh.default.gc_thresh3
    pid_max: int

    @classmethod
    def read(cls) -> HostFacts:
        return cls(mem_available_mb=_meminfo("MemAvailable") / 1024,
                   nofile_hard=resource.getrlimit(resource.RLIMIT_NOFILE)[1],
                   neighbour_limit=_int(Path("/proc/sys/net/ipv4/neigh/default/gc_thresh3")),
                   pid_max=_int(Path("/proc/sys/kernel/pid_max")) or 32768)


def problems(namespaces: int, peers: int, facts: HostFacts) -> list[str]:
    """Why a lab of `namespaces` namespaces with `peers` reference peers cannot run here."""
    found = []
    memory = namespaces * KERNEL_MB_PER_NAMESPACE + peers * MB_PER_PEER + RESERVE_MB
    if memory > facts.mem_available_mb:
        found.append(f"memory: ~{memory:,.0f} MB needed ({namespaces:,} namespaces x "
                     f"{KERNEL_MB_PER_NAMESPACE} MB of kernel memory, {peers:,} peers x "
                     f"{MB_PER_PEER} MB, {RESERVE_MB} MB for Prometheus and the testbed), "
                     f"{facts.mem_available_mb:,.0f} MB available: make the lab smaller "
                     f"(--set ...) or stop other labs")
    fds = peers + FDS_RESERVE
    if fds > facts.nofile_hard:
        found.append(f"open files: Prometheus keeps a connection to each of {peers:,} peers "
                     f"(~{fds:,} descriptors), the hard limit is {facts.nofile_hard:,}: "
                     f"raise it (ulimit -Hn, or LimitNOFILE= for a service)")
    arp = NEIGHBOURS_PER_NAMESPACE * namespaces
    if facts.neighbour_limit is not None and arp > facts.neighbour_limit:
        found.append(f"neighbour (ARP) table: ~{arp:,} entries needed, the kernel allows "
                     f"{facts.neighbour_limit:,} for all namespaces together: sudo sysctl "
                     f"-w net.ipv4.neigh.default.gc_thresh3={max(4 * arp, 32768)} (the "
                     f"set-up, playbooks/lab.yml, raises it)")
    if peers + 4096 > facts.pid_max:
        found.append(f"processes: {peers:,} peers need pids, kernel.pid_max is "
                     f"{facts.pid_max:,}: raise it (sysctl -w kernel.pid_max=4194304)")
    return found


def check(plan: NetworkPlan, facts: HostFacts | None = None) -> None:
    """Raise BackendError with every reason this machine cannot hold the plan; otherwise
    lift this process's soft open-files limit to the hard one, which the lab's Prometheus
    and launcher inherit (a login shell's 1,024 cannot scrape 1,000 peers)."""
    facts = facts or HostFacts.read()
    peers = sum(1 for n in plan.nodes.values()
                if n.kind in ("peer", "login") and n.node.command is None and plan.overlay)
    found = problems(len(plan.namespaces()), peers, facts)
    if found:
        raise BackendError(f"this machine cannot hold lab {plan.lab!r} "
                           f"({len(plan.nodes):,} nodes):\n  - " + "\n  - ".join(found))
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else (
        _int(Path("/proc/sys/fs/nr_open")) or soft)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def disk_problem(need: dict[str, int], free: int, where: Path) -> str | None:
    """Why the files the nodes will write (bytes per node) do not fit `free` bytes."""
    total = sum(need.values())
    if not total or total + DISK_RESERVE_MB * 2**20 <= free:
        return None
    biggest = sorted(need.items(), key=lambda item: (-item[1], item[0]))[:3]
    top = ", ".join(f"{name} {_mb(size)}" for name, size in biggest if size)
    return (f"disk: the nodes may write ~{_mb(total)} into {where} (most: {top}), its "
            f"filesystem has {_mb(free)} free: fewer or smaller episodes, or --state-dir "
            "(TESTBED_STATE_DIR) on a bigger filesystem (the default, /run, is often a "
            "small tmpfs held in memory)")


def check_disk(lab: str, need: dict[str, int], state_dir: Path) -> None:
    """Raise BackendError if the nodes' files cannot fit where the lab keeps its state."""
    where = state_dir
    while not where.exists() and where != where.parent:
        where = where.parent
    why = disk_problem(need, shutil.disk_usage(where).free, state_dir)
    if why:
        raise BackendError(f"this machine cannot hold lab {lab!r}:\n  - {why}")


def _mb(size: float) -> str:
    return f"{size / 2**20:,.0f} MB"


def _meminfo(key: str) -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1])
    return 0


def _int(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
