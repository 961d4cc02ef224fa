#!/usr/bin/python3
"""Stock-Mininet baseline for the "tree-N" build benchmark.

Why this exists: our benchmark compares the project's own backend against stock
Mininet *measured in the same run on the same machine*, not against numbers quoted
from elsewhere. This script builds the identical topology with Debian's stock Mininet
(2.3.0) and nothing else: it never imports the ``testbed`` package.

The "tree-N" topology (benchmarks/tree_topology.py is the same shape in our YAML):
  * one core switch ``c1``;
  * E = ceil(N / 50) edge switches ``e1..eE``, each linked to ``c1``;
  * N hosts ``h1..hN``; host j is linked to edge switch ``e((j - 1) // 50 + 1)``;
  * every link is a TCLink with bw=10 (Mbit/s): HTB on both ends, no netem;
  * switches are mininet.nodelib.LinuxBridge (stp=False: the graph is a tree),
    no controller; hosts get Mininet's default addresses from 10.0.0.0/8.
  So N hosts give E + 1 switches and N + E links.

Needs: run as root with /usr/bin/python3; ``brctl`` (Debian package bridge-utils),
which LinuxBridge shells out to. The kernel needs no openvswitch and no sch_netem.

Usage: stock_mininet.py --hosts N [--processes] [--ping-check]
The last line of stdout is one JSON object: build_s (build + start), processes_s,
stop_s, total_s (time.monotonic), peak_pss_mb (this process and all its descendants,
sampled every 0.5 s), peak_rss_mb (this process), plus counts and leak checks.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import resource
import select
import signal
import subprocess
import sys
import time
from typing import Any

from mininet.link import TCLink
from mininet.log import setLogLevel
from mininet.net import VERSION, Mininet
from mininet.nodelib import LinuxBridge
from mininet.topo import Topo

HOSTS_PER_EDGE = 50
BW_MBIT = 10


class TreeTopo(Topo):
    """tree-N: c1 <- e1..eE <- h1..hN, 50 hosts per edge switch."""

    def build(self, n: int = 1) -> None:
        core = self.addSwitch("c1", stp=False)
        edges = [self.addSwitch(f"e{i}", stp=False)
                 for i in range(1, math.ceil(n / HOSTS_PER_EDGE) + 1)]
        for edge in edges:
            self.addLink(edge, core, bw=BW_MBIT)
        for j in range(1, n + 1):
            self.addLink(self.addHost(f"h{j}"), edges[(j - 1) // HOSTS_PER_EDGE], bw=BW_MBIT)


def descendants(root: int) -> list[int]:
    """root and every process below it (bash shells, mnexec, sleeps, tc ...)."""
    children: dict[int, list[int]] = {}
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{entry}/stat") as f:  # comm may hold spaces: split after ')'
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    tree = [root]
    for pid in tree:  # grows while we walk it: breadth-first
        tree.extend(children.get(pid, []))
    return tree


def memory_kb(pid: int) -> int:
    """PSS of one process in kB, RSS if smaps_rollup is unreadable, 0 if it is gone."""
    for path, key in ((f"/proc/{pid}/smaps_rollup", "Pss:"), (f"/proc/{pid}/status", "VmRSS:")):
        try:
            with open(path) as f:
                for line in f:
                    if line.startswith(key):
                        return int(line.split()[1])
        except OSError:
            continue
    return 0


def tree_kb(root: int, skip: int | None) -> int:  # skip: the sampler process
    return sum(memory_kb(pid) for pid in descendants(root) if pid != skip)


def sample_loop(root: int, period: float = 0.5) -> int:
    """Sampler child: sum root's tree every `period` s until stdin closes, print peak."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the parent
    peak, samples = 0, 0
    while True:
        peak, samples = max(peak, tree_kb(root, os.getpid())), samples + 1
        if select.select([sys.stdin], [], [], period)[0]:  # EOF: stop (or parent died)
            break
    print(max(peak, tree_kb(root, os.getpid())), samples + 1, flush=True)
    return 0


class PeakSampler:
    """From creation on, every 0.5 s sum PSS over our process tree and keep the max.

    This script re-executed, not a thread: at 1000 hosts a sample reads ~2000
    smaps_rollup files and a sampler thread's GIL contention made --processes 6x
    slower (12 s, not 2 s). Not forked either: no copy-on-write pages split PSS."""

    def __init__(self) -> None:
        self.peak_kb, self.samples = 0, 0
        self._proc = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "--sample-tree", str(os.getpid())],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def sample(self) -> None:
        """One extra sample from this process (the sampler's own memory excluded)."""
        self.peak_kb = max(self.peak_kb, tree_kb(os.getpid(), self._proc.pid))

    def stop(self) -> None:
        out, _ = self._proc.communicate(timeout=60)  # closes its stdin: last sample
        if out.strip():
            peak, self.samples = (int(x) for x in out.split())
            self.peak_kb = max(self.peak_kb, peak)


def leftover_links(names: set[str]) -> list[str]:
    """Root-namespace interfaces that still carry one of our node names."""
    out = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    ifnames = [line.split(": ")[1].split("@")[0] for line in out.splitlines()]
    return [i for i in ifnames if i in names or i.split("-eth")[0] in names]


def main() -> int:
    if sys.argv[1:2] == ["--sample-tree"]:  # internal: we are PeakSampler's child
        return sample_loop(int(sys.argv[2]))
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hosts", type=int, required=True)
    ap.add_argument("--processes", action="store_true", help="one `sleep 100000 &` per host")
    ap.add_argument("--ping-check", action="store_true", help="ping h1 -> hN once")
    args = ap.parse_args()
    if args.hosts < 1:
        ap.error("--hosts must be >= 1")
    # SIGINT/SIGTERM only take effect between phases: raised inside a Mininet
    # node.cmd() they leave a shell mid-command, then net.stop() fails and leaves
    # veths behind. A handler that merely records them lets os.read() resume.
    signals: list[int] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda signum, _: signals.append(signum))
    setLogLevel("warning")

    res: dict[str, Any] = {"mininet_version": VERSION, "n_hosts": args.hosts}
    sampler = PeakSampler()  # samples from now on
    t0 = time.monotonic()
    topo = TreeTopo(n=args.hosts)
    net = Mininet(topo=topo, switch=LinuxBridge, link=TCLink, controller=None, build=False)
    try:
        tb = time.monotonic()
        net.build()
        net.start()
        res["build_s"] = round(time.monotonic() - tb, 3)
        res["n_switches"], res["n_links"] = len(net.switches), len(net.links)
        if args.processes and not signals:
            tp = time.monotonic()
            for host in net.hosts:
                host.cmd("sleep 100000 &")
            res["processes_s"] = round(time.monotonic() - tp, 3)
        sampler.sample()  # untimed: the lab is fully up here, never miss that peak
        if args.ping_check and not signals:
            out = net.get("h1").cmd(f"ping -c1 -W5 {net.get(f'h{args.hosts}').IP()}")
            res["ping_ok"] = " 0% packet loss" in out
    finally:
        ts = time.monotonic()
        net.stop()
        res["stop_s"] = round(time.monotonic() - ts, 3)
        res["total_s"] = round(time.monotonic() - t0, 3)
        sampler.stop()
    res.update(peak_pss_mb=round(sampler.peak_kb / 1024, 1), pss_samples=sampler.samples,
               peak_rss_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
               leftover_links=leftover_links(set(topo.nodes())),
               leftover_procs=len(descendants(os.getpid())) - 1, interrupted_by=signals)
    print(json.dumps(res), flush=True)
    return 1 if res["leftover_links"] or signals or not res.get("ping_ok", True) else 0


if __name__ == "__main__":
    sys.exit(main())
