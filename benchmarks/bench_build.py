"""Build benchmark: our netns backend vs stock Mininet on the same tree-N topology.

Run as root from the repo root:
    sudo .venv/bin/python benchmarks/bench_build.py            # N = 200 and 1000
    sudo .venv/bin/python benchmarks/bench_build.py --hosts 200 --processes
    sudo .venv/bin/python benchmarks/bench_build.py --lab topologies/skype-2007.yaml \
        --set homes=2400 --set supernodes=120 --set corp_hosts=40   # ~5,000 nodes, ours only

For each N it builds and tears down tree-N (see tree_topology.py) with `testbed up/down`
and with stock Mininet (benchmarks/stock_mininet.py, run by /usr/bin/python3 in the same
run), and prints seconds, peak memory and the ratios. Memory is counted two ways: PSS of
the whole process tree (Mininet keeps a shell per node; our `up` exits and leaves no
process per plain host), and the drop in the machine's MemAvailable at the peak, which
also counts kernel objects (namespaces, veths, qdiscs) both sides create.

Teardown is timed twice: until the command returns ("down s"), and until the kernel has
freed the lab ("settled s": namespace count, root link count and MemAvailable back to
their baselines, benchmarks/settle.py); `ip netns del` returns long before the kernel has
removed the veths and qdiscs, while Mininet deletes its links one by one. Stock Mininet
starts only after our side has settled.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from settle import Baseline, mem_available_mb, wait_settled  # noqa: E402
from tree_topology import tree_yaml  # noqa: E402

REPO = HERE.parent


def tree_pss_mb(root: int) -> float:
    """Sum of PSS over a process and all its descendants."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        stack.extend(children.get(pid, []))
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
                    break
        except OSError:
            continue
    return total / 1024


class Sampler:
    """Peak process-tree PSS and peak MemAvailable drop while a command runs."""

    def __init__(self, pid: int, baseline_available: float) -> None:
        self.pid, self.baseline = pid, baseline_available
        self.peak_pss = 0.0
        self.peak_drop = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_pss = max(self.peak_pss, tree_pss_mb(self.pid))
            self.peak_drop = max(self.peak_drop, self.baseline - mem_available_mb())
            self._stop.wait(0.25)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def timed(argv: list[str], baseline: float, env: dict[str, str] | None = None
          ) -> tuple[float, subprocess.CompletedProcess[str], Sampler]:
    began = time.monotonic()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, cwd=REPO)
    sampler = Sampler(proc.pid, baseline)
    out, err = proc.communicate()
    sampler.stop()
    took = time.monotonic() - began
    done = subprocess.CompletedProcess(argv, proc.returncode, out, err)
    if proc.returncode != 0:
        raise SystemExit(f"failed: {' '.join(argv)}\n{err[-3000:]}")
    return took, done, sampler


def _settled(returns: float, baseline: Baseline) -> float | None:
    settle = wait_settled(baseline)
    return None if settle is None else returns + settle


def ours(hosts: int, processes: bool) -> dict[str, float | None]:
    text = tree_yaml(hosts, name=f"bench{hosts}")
    if processes:
        text = text.replace("    kind: host\n", "    kind: host\n    command: sleep 100000\n")
    return ours_lab(text, f"bench{hosts}", [])


def ours_lab(text: str, lab: str, sets: list[str]) -> dict[str, float | None]:
    """`testbed up` and `testbed down` of one topology, down timed until the kernel has
    freed the lab (settled) as well as until the command returned."""
    with tempfile.TemporaryDirectory() as tmp:
        topo = Path(tmp) / "topology.yaml"
        topo.write_text(text)
        env = {**os.environ, "TESTBED_STATE_DIR": str(Path(tmp) / "state")}
        cli = [sys.executable, "-m", "testbed"]
        baseline = Baseline.now()
        sets_argv = [arg for kv in sets for arg in ("--set", kv)]
        build, _, up_sampler = timed([*cli, "up", str(topo), "--quiet", *sets_argv],
                                     baseline.available_mb, env)
        held = baseline.available_mb - mem_available_mb()  # the lab as it stands
        stop, _, down_sampler = timed([*cli, "down", lab, "--quiet"], baseline.available_mb,
                                      env)
        settled = _settled(stop, baseline)
    return {"build_s": build, "stop_s": stop, "settled_s": settled,
            "total_s": build + (settled if settled is not None else stop),
            "peak_pss_mb": max(up_sampler.peak_pss, down_sampler.peak_pss),
            "peak_mem_drop_mb": max(up_sampler.peak_drop, held, down_sampler.peak_drop)}


def stock(hosts: int, processes: bool) -> dict[str, float | None]:
    """Stock Mininet, started only once our side's teardown has settled."""
    argv = ["/usr/bin/python3", str(HERE / "stock_mininet.py"), "--hosts", str(hosts)]
    if processes:
        argv.append("--processes")
    baseline = Baseline.now()
    took, done, sampler = timed(argv, baseline.available_mb)
    figures: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    build = figures["build_s"] + figures.get("processes_s", 0.0)
    # net.stop() returned stop_s into the run; the process then exited: settle from here
    settled = _settled(figures["stop_s"] + (took - figures["total_s"]), baseline)
    return {"build_s": build, "stop_s": figures["stop_s"], "settled_s": settled,
            "total_s": build + (settled if settled is not None else figures["stop_s"]),
            "peak_pss_mb": max(sampler.peak_pss, figures.get("peak_pss_mb", 0.0)),
            "peak_mem_drop_mb": sampler.peak_drop}


def _fmt(value: float | None, width: int) -> str:
    return f"{'n/s':>{width}}" if value is None else f"{value:>{width}.1f}"


def _ratio(stock_value: float | None, ours_value: float | None, width: int) -> str:
    if stock_value is None or ours_value is None or ours_value < 0.05:
        return f"{'-':>{width}} "  # e.g. MemAvailable rose: others freed memory meanwhile
    return f"{stock_value / max(ours_value, 1e-3):>{width}.1f}x"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hosts", type=int, action="append",
                        help="N (repeatable; default 200 and 1000)")
    parser.add_argument("--processes", action="store_true",
                        help="also start one process in every host (sleep), both sides")
    parser.add_argument("--lab", type=Path,
                        help="also time `up`/`down` of this topology (our side only)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a parameter of --lab (repeatable)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root: both sides build network namespaces")
    results: list[dict[str, Any]] = []
    if args.lab:
        from testbed.topology.loader import load_topology

        name = load_topology(args.lab).name
        print(f"{args.lab.name} {' '.join(args.set)}: testbed ...", file=sys.stderr, flush=True)
        results.append({"hosts": args.lab.stem[:6],
                        "testbed": ours_lab(args.lab.read_text(), name, args.set)})
    for n in args.hosts or ([] if args.lab else [200, 1000]):
        print(f"tree-{n}: testbed ...", file=sys.stderr, flush=True)
        ours_figures = ours(n, args.processes)
        print(f"tree-{n}: stock Mininet ...", file=sys.stderr, flush=True)
        stock_figures = stock(n, args.processes)
        results.append({"hosts": n, "testbed": ours_figures, "mininet": stock_figures})
    if args.json:
        print(json.dumps(results, indent=1))
        return 0
    print(f"{'N':>6} {'side':<8} {'build s':>8} {'down s':>7} {'settled s':>9} "
          f"{'total s':>8} {'PSS MB':>7} {'mem MB':>7}")
    for row in results:
        sides = [s for s in ("testbed", "mininet") if s in row]
        for side in sides:
            f = row[side]
            print(f"{row['hosts']:>6} {side:<8} {_fmt(f['build_s'], 8)} {_fmt(f['stop_s'], 7)} "
                  f"{_fmt(f['settled_s'], 9)} {_fmt(f['total_s'], 8)} "
                  f"{_fmt(f['peak_pss_mb'], 7)} {_fmt(f['peak_mem_drop_mb'], 7)}")
        if len(sides) == 2:
            t, m = row["testbed"], row["mininet"]
            print(f"{row['hosts']:>6} {'ratio':<8} {_ratio(m['build_s'], t['build_s'], 7)} "
                  f"{_ratio(m['stop_s'], t['stop_s'], 6)} "
                  f"{_ratio(m['settled_s'], t['settled_s'], 8)} "
                  f"{_ratio(m['total_s'], t['total_s'], 7)} "
                  f"{_ratio(m['peak_pss_mb'], t['peak_pss_mb'], 6)} "
                  f"{_ratio(m['peak_mem_drop_mb'], t['peak_mem_drop_mb'], 6)}"
                  "   (stock Mininet / testbed: higher is better for testbed)")
    print("down s: until the command returned; settled s: until the kernel had freed the "
          "lab (namespaces, root links, MemAvailable back to baseline; n/s: not within "
          "180 s). Shared machine: figures are pessimistic.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
