"""Build benchmark: our netns backend vs stock Mininet on the same tree-N topology.

Run as root from the repo root:
    sudo .venv/bin/python benchmarks/bench_build.py            # N = 200 and 1000
    sudo .venv/bin/python benchmarks/bench_build.py --hosts 200 --processes

For each N it builds and tears down tree-N (see tree_topology.py) with `testbed up/down`
and with stock Mininet (benchmarks/stock_mininet.py, run by /usr/bin/python3 in the same
run), and prints seconds, peak memory and the ratios. Memory is counted two ways: PSS of
the whole process tree (Mininet keeps a shell per node; our `up` exits and leaves no
process per plain host), and the drop in the machine's MemAvailable at the peak, which
also counts kernel objects (namespaces, veths, qdiscs) both sides create.
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

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from tree_topology import tree_yaml  # noqa: E402

REPO = HERE.parent


def mem_available_mb() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) / 1024
    return 0.0


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


def ours(hosts: int, processes: bool) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        topo = Path(tmp) / f"tree{hosts}.yaml"
        text = tree_yaml(hosts, name=f"bench{hosts}")
        if processes:
            text = text.replace("    kind: host\n", "    kind: host\n    command: sleep 100000\n")
        topo.write_text(text)
        env = {**os.environ, "TESTBED_STATE_DIR": str(Path(tmp) / "state")}
        cli = [sys.executable, "-m", "testbed"]
        baseline = mem_available_mb()
        build, _, up_sampler = timed([*cli, "up", str(topo), "--quiet"], baseline, env)
        held = baseline - mem_available_mb()  # the lab as it stands, up process gone
        stop, _, down_sampler = timed([*cli, "down", f"bench{hosts}", "--quiet"], baseline, env)
    return {"build_s": build, "stop_s": stop, "total_s": build + stop,
            "peak_pss_mb": max(up_sampler.peak_pss, down_sampler.peak_pss),
            "peak_mem_drop_mb": max(up_sampler.peak_drop, held, down_sampler.peak_drop)}


def stock(hosts: int, processes: bool) -> dict[str, float]:
    argv = ["/usr/bin/python3", str(HERE / "stock_mininet.py"), "--hosts", str(hosts)]
    if processes:
        argv.append("--processes")
    baseline = mem_available_mb()
    took, done, sampler = timed(argv, baseline)
    figures: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    build = figures["build_s"] + figures.get("processes_s", 0.0)
    return {"build_s": build, "stop_s": figures["stop_s"], "total_s": took,
            "peak_pss_mb": max(sampler.peak_pss, figures.get("peak_pss_mb", 0.0)),
            "peak_mem_drop_mb": sampler.peak_drop}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hosts", type=int, action="append",
                        help="N (repeatable; default 200 and 1000)")
    parser.add_argument("--processes", action="store_true",
                        help="also start one process in every host (sleep), both sides")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root: both sides build network namespaces")
    results = []
    for n in args.hosts or [200, 1000]:
        print(f"tree-{n}: testbed ...", file=sys.stderr, flush=True)
        ours_figures = ours(n, args.processes)
        print(f"tree-{n}: stock Mininet ...", file=sys.stderr, flush=True)
        stock_figures = stock(n, args.processes)
        results.append({"hosts": n, "testbed": ours_figures, "mininet": stock_figures})
    if args.json:
        print(json.dumps(results, indent=1))
        return 0
    header = (f"{'N':>5} {'side':<8} {'build s':>8} {'down s':>7} {'total s':>8} "
              f"{'PSS MB':>7} {'mem MB':>7}")
    print(header)
    for row in results:
        for side in ("testbed", "mininet"):
            f = row[side]
            print(f"{row['hosts']:>5} {side:<8} {f['build_s']:>8.1f} {f['stop_s']:>7.1f} "
                  f"{f['total_s']:>8.1f} {f['peak_pss_mb']:>7.0f} {f['peak_mem_drop_mb']:>7.0f}")
        t, m = row["testbed"], row["mininet"]
        print(f"{row['hosts']:>5} {'ratio':<8} {m['build_s'] / t['build_s']:>7.1f}x "
              f"{m['stop_s'] / max(t['stop_s'], 1e-3):>6.1f}x {m['total_s'] / t['total_s']:>7.1f}x"
              f" {m['peak_pss_mb'] / max(t['peak_pss_mb'], 1):>6.1f}x "
              f"{m['peak_mem_drop_mb'] / max(t['peak_mem_drop_mb'], 1):>6.1f}x"
              "   (stock Mininet / testbed: higher is better for testbed)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
