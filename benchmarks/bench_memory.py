"""Memory of N idle, logged-in reference peers: the pre-forking launcher vs the stock way.

    sudo .venv/bin/python benchmarks/bench_memory.py              # N = 1000
    sudo .venv/bin/python benchmarks/bench_memory.py --peers 200 --detail

Builds a real lab: the tree-N topology of bench_build.py (10 Mbit/s on every link) whose
N hosts are reference peers, plus a login server and N/100 supernodes (at least 3) on the
core switch. Every peer is forked from the lab's launcher (testbed/process/launcher.py).
Once every peer reports peer_logged_in 1 on its /metrics (scraped over the management
network) and a few keep-alives have passed, it sums PSS (/proc/PID/smaps_rollup) over the
launcher, the login server, the supernodes and the clients, and prints the total, the
figure per peer and the verdict against the issue's target (1000 peers in 3 GB).

Then, in the same lab, the stock way (what a stock Mininet user does: start the peer's
own command, `python -m testbed peer --config ...`, in each host, one interpreter each):
a sample of clients (default 50) is stopped and started again that way, waits until they
are logged in again, and their mean PSS is extrapolated to N peers plus the login server.
The lab is always torn down (also on Ctrl-C or SIGTERM).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.tree_topology import tree_yaml  # noqa: E402
from testbed.backends.netns import NetnsBackend  # noqa: E402
from testbed.lab.lab import Lab  # noqa: E402
from testbed.lab.state import LabState  # noqa: E402
from testbed.plan.build import build_plan  # noqa: E402
from testbed.plan.model import NetworkPlan  # noqa: E402
from testbed.process import ksm, namespaces  # noqa: E402
from testbed.process.records import ProcessRecord  # noqa: E402
from testbed.process.supervisor import is_alive, stop  # noqa: E402
from testbed.topology.loader import load_topology_text  # noqa: E402

TARGET_MB_PER_1000 = 3000.0  # the issue: 1000 idle logged-in peers in 3 GB of PSS
SETTLE_S = 12.0  # idle time after the last login: a few keep-alives (5 s each)
KSM_DIR = Path("/sys/kernel/mm/ksm")
KSM_PASSES = 3  # a page merges on ksmd's second look at it; one more pass for the late ones


def lab_yaml(peers: int, name: str) -> str:
    supernodes = max(3, peers // 100)
    clients = peers - supernodes
    children = int(1.5 * clients / supernodes) + 10
    overlay = "\n".join([
        "overlay:",
        "  policy: fixed",
        f"  warmup: {max(10, clients // 50)}s",
        f"  login: {{rate: 500, queue: {clients + 100}}}",
        f"  supernode: {{max_children: {children}, joins_per_second: 200, min_uptime: 1s}}",
    ])
    text = tree_yaml(clients, name).replace("    kind: host\n", "    kind: peer\n")
    head, nodes = text.split("nodes:\n", 1)
    extra = "\n".join([
        "  login: {kind: login, uplink: {to: c1, bandwidth: 100Mbit}}",
        "  sn{n}:",
        f"    count: {supernodes}",
        "    kind: peer",
        "    labels: {sn_capable: true}",
        "    uplink: {to: c1, bandwidth: 10Mbit}",
    ])
    return f"{head}{overlay}\nnodes:\n{extra}\n{nodes}"


def smaps_rollup(pid: int) -> dict[str, int]:
    """kB figures of /proc/PID/smaps_rollup (empty if the process is gone)."""
    try:
        lines = Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]
    except OSError:
        return {}
    return {k.rstrip(":"): int(v) for k, v, *_ in (line.split() for line in lines)}


def pss_mb(pids: Iterable[int], key: str = "Pss") -> float:
    return sum(smaps_rollup(pid).get(key, 0) for pid in pids) / 1024


def children_of(pid: int) -> list[int]:
    """Direct children of a process (the launcher's helper, besides the peers)."""
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(x) for x in text.split()]


def top_mappings(pid: int, count: int = 12) -> list[tuple[int, int, str]]:
    """(Private_Dirty kB, Rss kB, mapping) of a process's mappings, largest first."""
    rows, current, rss = [], "", 0
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        head = line.split()
        if "-" in head[0] and not head[0].endswith(":"):
            current = " ".join(head[5:]) or f"[anon {head[0]}]"
        elif head[0] == "Rss:":
            rss = int(head[1])
        elif head[0] == "Private_Dirty:" and int(head[1]):
            rows.append((int(head[1]), rss, current))
    return sorted(rows, reverse=True)[:count]


def _ksm(name: str) -> int:
    try:
        return int((KSM_DIR / name).read_text())
    except (OSError, ValueError):
        return -1


def merging_mb(pids: Iterable[int]) -> float:
    """MB of these processes' pages that KSM currently merges (each counted once per
    process that maps it)."""
    pages = 0
    for pid in pids:
        with contextlib.suppress(OSError, ValueError):
            pages += int(Path(f"/proc/{pid}/ksm_merging_pages").read_text())
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def ksmd_cpu_ticks() -> int:
    """utime + stime of the ksmd kernel thread (0 if there is none)."""
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and (entry / "comm").read_text().strip() == "ksmd":
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                return int(fields[11]) + int(fields[12])
        except OSError:
            continue
    return 0


def settle_ksm(timeout: float) -> str:
    """If ksmd runs (the launcher starts it, testbed/process/ksm.py), stay idle until it
    has made KSM_PASSES more full passes over the peers' memory, so the figures are those
    of peers idle for a while rather than of peers a few seconds old."""
    if _ksm("run") != 1:
        return "KSM off: nothing merged"
    first, began = _ksm("full_scans"), time.monotonic()
    while _ksm("full_scans") < first + KSM_PASSES and time.monotonic() - began < timeout:
        time.sleep(2)
    passes = _ksm("full_scans") - first
    return (f"KSM on: idled {time.monotonic() - began:.0f}s for {passes} full ksmd passes; "
            f"{_ksm('pages_sharing') * 4 // 1024} MB of pages now share "
            f"{_ksm('pages_shared') * 4 // 1024} MB")


async def _scrape(address: str, port: int) -> bool:
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(address, port), 5)
        writer.write(b"GET /metrics HTTP/1.0\r\n\r\n")
        body = await asyncio.wait_for(reader.read(), 10)
        writer.close()
    except (OSError, TimeoutError):
        return False
    return b"\npeer_logged_in 1.0" in body


async def _scrape_all(targets: list[str], port: int) -> list[str]:
    """The targets that are not logged in yet (at most 64 scrapes at once)."""
    gate = asyncio.Semaphore(64)

    async def one(address: str) -> bool:
        async with gate:
            return await _scrape(address, port)

    results = await asyncio.gather(*(one(t) for t in targets))
    return [t for t, ok in zip(targets, results, strict=True) if not ok]


def wait_logged_in(plan: NetworkPlan, nodes: list[str], timeout: float) -> float:
    """Poll the peers' /metrics over the management network until all are logged in."""
    assert plan.overlay is not None
    port = plan.overlay.metrics_port
    by_address = {(plan.nodes[n].mgmt_address or "").split("/")[0]: n for n in nodes}
    waiting = list(by_address)
    began = time.monotonic()
    while waiting:
        with namespaces.inside(plan.mgmt_namespace):  # sockets made here stay in it
            waiting = asyncio.run(_scrape_all(waiting, port))
        took = time.monotonic() - began
        print(f"  {len(nodes) - len(waiting)}/{len(nodes)} logged in after {took:.0f}s",
              file=sys.stderr, flush=True)
        if waiting and took > timeout:
            raise SystemExit(f"{len(waiting)} peers not logged in after {timeout:.0f}s, e.g. "
                             f"{by_address[waiting[0]]}")
        if waiting:
            time.sleep(3)
    return time.monotonic() - began


def restart_the_stock_way(records: list[ProcessRecord], backend: NetnsBackend,
                          state: LabState) -> list[ProcessRecord]:
    """Stop these forked peers and start each as its own interpreter, as a stock user's
    `host.cmd('python -m testbed peer --config ...')` would (same config, same host)."""
    stop(records, grace=5.0)
    started = []
    for old in records:
        node_dir = state.node_dir(old.node)
        record = backend.supervisor.start(
            node=old.node, service="peer", namespace=old.namespace,
            argv=(sys.executable, "-m", "testbed", "peer", "--config",
                  str(node_dir / "peer.json")),
            env={}, cwd=node_dir, log=node_dir / "peer-stock.log")
        state.record({"op": "process", **record.__dict__})
        started.append(record)
    return started


def report(title: str, groups: dict[str, list[int]]) -> float:
    print(title)
    total = 0.0
    for name, pids in groups.items():
        mb = pss_mb(pids)
        total += mb
        private = pss_mb(pids, "Private_Dirty")
        print(f"  {name:<12} {len(pids):>5} processes  PSS {mb:8.1f} MB  "
              f"({mb / max(1, len(pids)):5.2f} MB each; private dirty {private:8.1f} MB)")
    print(f"  {'total':<12} {sum(map(len, groups.values())):>5} processes  PSS {total:8.1f} MB")
    return total


def mem_available_mb() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no MemAvailable in /proc/meminfo")


def run(args: argparse.Namespace, root: Path) -> None:
    name = f"mem{args.peers}"
    topology = load_topology_text(lab_yaml(args.peers, name), "bench-memory")
    plan = build_plan(topology)
    available_before = mem_available_mb()
    began = time.monotonic()
    print(f"building a {args.peers}-peer lab ...", file=sys.stderr, flush=True)
    lab = Lab.up(topology, state_dir=root)
    state, backend = lab.state, lab.backend
    assert isinstance(backend, NetnsBackend)  # the stock way starts through its supervisor
    try:
        print(f"  built in {time.monotonic() - began:.0f}s", file=sys.stderr, flush=True)
        records = [r for r in state.read().processes if is_alive(r)]
        peers = {r.node: r for r in records if r.service == "peer"}
        forked = {r.pid for r in peers.values()}
        launcher = [r.pid for r in records if r.service == "launcher"]
        launcher += [c for pid in launcher for c in children_of(pid) if c not in forked]
        nodes = [n for n in peers if plan.nodes[n].kind == "peer"]
        login = [r.pid for n, r in peers.items() if plan.nodes[n].kind == "login"]
        sns = [peers[n].pid for n in nodes if n.startswith("sn")]
        clients = [n for n in nodes if not n.startswith("sn")]
        groups = {"launcher": launcher, "login server": login, "supernodes": sns,
                  "clients": [peers[n].pid for n in clients]}
        took = wait_logged_in(plan, nodes, args.timeout)
        print(f"  all {len(nodes)} peers logged in {took:.0f}s after the build; idle until "
              f"ksmd has merged, then {SETTLE_S:.0f}s", file=sys.stderr, flush=True)
        if args.no_ksm:
            merged = f"KSM off for this lab ({ksm.OFF_ENV}=off): nothing of it merged"
        else:
            early = sum(pss_mb(pids) for pids in groups.values()) / len(nodes)
            print(f"just logged in, before ksmd's passes: {early:.2f} MB PSS per peer "
                  f"({merging_mb(pid for pids in groups.values() for pid in pids):.0f} MB "
                  f"merged so far)")
            merged = settle_ksm(args.ksm_timeout)
        ticks = ksmd_cpu_ticks()
        time.sleep(SETTLE_S)
        ksmd = (ksmd_cpu_ticks() - ticks) / os.sysconf("SC_CLK_TCK") / SETTLE_S
        scan = Path("/sys/kernel/mm/ksm/pages_to_scan")
        pages = scan.read_text().strip() if scan.exists() else "?"
        print(f"{merged}; ksmd CPU while idle: {100 * ksmd:.0f}% of one core "
              f"(pages_to_scan {pages}; {ksm.PAGES_ENV} / --ksm-pages trade it)")
        taken = available_before - mem_available_mb()
        ours = report(f"pre-forked ({len(nodes)} peers + login server, from one launcher):",
                      groups)
        namespaces = sum(1 for n in plan.nodes.values() if n.namespace)
        print(f"MemAvailable fell by {taken:.0f} MB over the build and logins: minus the "
              f"processes' PSS, {taken - ours:.0f} MB for the kernel's side of "
              f"{namespaces} namespaces ({(taken - ours) / namespaces:.2f} MB per node: "
              "namespaces, veths, qdiscs, sockets; other load on the host blurs it)")
        if not args.no_ksm:
            merging = merging_mb(pid for pids in groups.values() for pid in pids)
            print(f"  of their pages, {merging:.0f} MB are merged by KSM "
                  f"({merging / len(nodes):.2f} MB per peer; /proc/PID/ksm_merging_pages)")
        per_peer = ours / len(nodes)
        scaled = per_peer * 1000
        print(f"  per peer (all of it / {len(nodes)} peers): {per_peer:.2f} MB -> 1000 peers "
              f"{scaled:.0f} MB: target {TARGET_MB_PER_1000:.0f} MB "
              f"{'MET' if scaled <= TARGET_MB_PER_1000 else 'NOT met'}")
        if args.detail:
            pid = peers[clients[0]].pid
            print(f"  largest private-dirty mappings of client {clients[0]} (pid {pid}):")
            for private, rss, mapping in top_mappings(pid):
                print(f"    {private:>6} kB private dirty of {rss:>6} kB RSS  {mapping}")
        sample = clients[:: max(1, len(clients) // args.sample)][: args.sample]
        print(f"stock way: restarting {len(sample)} clients as `python -m testbed peer` ...",
              file=sys.stderr, flush=True)
        stock = restart_the_stock_way([peers[n] for n in sample], backend, state)
        wait_logged_in(plan, sample, args.timeout)
        time.sleep(SETTLE_S)
        each = pss_mb(r.pid for r in stock) / len(stock)
        extrapolated = each * (len(nodes) + 1)
        print(f"stock way (one interpreter per host): measured {len(stock)} clients, "
              f"{each:.2f} MB PSS each")
        print(f"  EXTRAPOLATED to {len(nodes)} peers + login server: {extrapolated:.0f} MB "
              f"(mean of the sample x {len(nodes) + 1})")
        print(f"ratio stock / pre-forked: {extrapolated / ours:.1f}x "
              "(higher is better for the launcher)")
    finally:
        print("tearing the lab down ...", file=sys.stderr, flush=True)
        lab.down()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peers", type=int, default=1000, help="overlay peers (default 1000)")
    parser.add_argument("--sample", type=int, default=50,
                        help="clients restarted the stock way (default 50)")
    parser.add_argument("--timeout", type=float, default=900,
                        help="seconds to wait for the logins")
    parser.add_argument("--ksm-timeout", type=float, default=300,
                        help="longest idle wait for ksmd's passes after the logins")
    parser.add_argument("--no-ksm", action="store_true",
                        help=f"the baseline: the launcher neither marks its memory for KSM "
                             f"nor starts ksmd ({ksm.OFF_ENV}=off)")
    parser.add_argument("--ksm-pages", type=int, metavar="N",
                        help=f"pages_to_scan ksmd is started with ({ksm.PAGES_ENV}; default "
                             f"{ksm.PAGES_TO_SCAN}): fewer, less ksmd CPU and slower merging. "
                             "Applies only if ksmd is off when the lab starts")
    parser.add_argument("--detail", action="store_true",
                        help="also list a client's largest private-dirty mappings")
    args = parser.parse_args()
    if args.peers < 10:
        parser.error("--peers must be at least 10")
    if args.no_ksm:
        os.environ[ksm.OFF_ENV] = "off"  # the launcher inherits our environment
    if args.ksm_pages is not None:
        os.environ[ksm.PAGES_ENV] = str(args.ksm_pages)
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # SIGTERM tears down too
    with tempfile.TemporaryDirectory() as tmp:
        run(args, Path(tmp))
    return 0


if __name__ == "__main__":
    sys.exit(main())
