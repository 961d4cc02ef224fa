"""Mininet's own topologies, built here (`testbed up --topo ...`) and by stock Mininet in
the same run: build, a pingall over a sample of hosts, teardown.

Run as root from the repo root:
    sudo .venv/bin/python benchmarks/bench_mininet_topos.py
    sudo .venv/bin/python benchmarks/bench_mininet_topos.py --topo tree,depth=3,fanout=4 \
        --topo linear,40 --runs 3

Ours: `testbed up --topo SPEC`, `testbed cli --script` with `time pingall` (a sample of 8
hosts, 56 pings, run 8 at a time; the CLI's own elapsed time, and the whole command's
with Python's start in "cli s"), `testbed down`, each timed from outside as a user runs
them. Stock: Debian's Mininet 2.3.0 under /usr/bin/python3 (this file with --stock;
the testbed package is never imported there), with mn's TOPOS, LinuxBridge switches and
no controller (the kernel here has no openvswitch), net.start(), net.ping() over the same
8 hosts (Mininet pings one at a time), net.stop(). Both stop at the first failed ping.
The machine is shared: figures are pessimistic; compare within one run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SAMPLE = 8
DEFAULT_TOPOS = ("tree,depth=2,fanout=8", "tree,depth=3,fanout=5", "linear,32")  # docs/mininet.md


def sample(hosts: list, size: int = SAMPLE) -> list:  # type: ignore[type-arg]
    """The hosts `pingall` picks on a big lab (testbed/mininet/net.py): evenly spread."""
    if len(hosts) <= 12:
        return hosts
    return [hosts[i * len(hosts) // size] for i in range(size)]


# --- stock Mininet (runs under /usr/bin/python3 with --stock) ------------------------------
def stock(spec: str) -> dict[str, float]:
    from mininet.log import setLogLevel
    from mininet.net import Mininet
    from mininet.nodelib import LinuxBridge
    from mininet.topo import LinearTopo, MinimalTopo, SingleSwitchReversedTopo, SingleSwitchTopo
    from mininet.topolib import TreeTopo
    from mininet.util import buildTopo

    setLogLevel("error")
    topos = {"minimal": MinimalTopo, "linear": LinearTopo, "reversed": SingleSwitchReversedTopo,
             "single": SingleSwitchTopo, "tree": TreeTopo}
    began = time.monotonic()
    net = Mininet(topo=buildTopo(topos, spec), switch=LinuxBridge, controller=None,
                  autoSetMacs=False)
    net.start()
    built = time.monotonic()
    try:
        loss = net.ping(hosts=sample(net.hosts), timeout="1")
        pinged = time.monotonic()
    finally:
        net.stop()
    return {"build_s": built - began, "ping_s": pinged - built,
            "down_s": time.monotonic() - pinged, "loss_percent": loss,
            "hosts": len(net.hosts), "switches": len(net.switches)}


# --- ours ----------------------------------------------------------------------------------
def testbed(*args: str, state: str) -> float:
    began = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "testbed", *args], capture_output=True,
                            text=True, cwd=REPO, env={**os.environ, "TESTBED_STATE_DIR": state})
    if result.returncode != 0:
        raise SystemExit(f"testbed {' '.join(args)} failed:\n{result.stderr}")
    testbed.last = result.stdout + result.stderr  # type: ignore[attr-defined]
    return time.monotonic() - began


def ours(spec: str, run: int) -> dict[str, float]:
    name = f"bm{os.getpid() % 10000}r{run}"
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "ping.cli"
        script.write_text("time pingall\n")  # Mininet's CLI prints the elapsed time
        build = testbed("up", "--topo", spec, "--name", name, "--quiet", state=tmp)
        try:
            command = testbed("cli", name, "--script", str(script), state=tmp)
            out = testbed.last  # type: ignore[attr-defined]
        finally:
            down = testbed("down", name, "--quiet", state=tmp)
    loss = float(out.split("*** Results: ")[1].split("%")[0])
    ping = float(out.split("*** Elapsed time: ")[1].split()[0])
    return {"build_s": build, "ping_s": ping, "cli_s": command, "down_s": down,
            "loss_percent": loss}


def stock_run(spec: str) -> dict[str, float]:
    result = subprocess.run(["/usr/bin/python3", __file__, "--stock", spec],
                            capture_output=True, text=True, cwd=REPO)
    if result.returncode != 0:
        raise SystemExit(f"stock Mininet failed on {spec}:\n{result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--topo", action="append", help="mn topology spec (repeatable)")
    parser.add_argument("--runs", type=int, default=1, help="runs of each (median shown)")
    parser.add_argument("--stock", metavar="SPEC", help=argparse.SUPPRESS)
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args()
    if args.stock:
        print(json.dumps(stock(args.stock)))
        return 0
    if os.geteuid() != 0:
        raise SystemExit("run as root: both sides build network namespaces")
    rows = []
    for spec in args.topo or DEFAULT_TOPOS:
        mine = [ours(spec, r) for r in range(args.runs)]
        theirs = [stock_run(spec) for _ in range(args.runs)]
        row = {"topo": spec, "hosts": theirs[0]["hosts"], "switches": theirs[0]["switches"]}
        for side, runs in (("testbed", mine), ("mininet", theirs)):
            for key in ("build_s", "ping_s", "down_s", "loss_percent"):
                row[f"{side}_{key}"] = statistics.median(r[key] for r in runs)
        row["testbed_cli_s"] = statistics.median(r["cli_s"] for r in mine)
        rows.append(row)
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    print(f"{'topo':24} {'hosts':>5} {'sw':>3} | {'build s':>15} | {'pingall(8) s':>15} | "
          f"{'teardown s':>15} | loss % | cli s")
    print(f"{'':24} {'':>5} {'':>3} | {'ours  mininet':>15} | {'ours  mininet':>15} | "
          f"{'ours  mininet':>15} |")
    for r in rows:
        print(f"{r['topo']:24} {r['hosts']:>5} {r['switches']:>3} | "
              f"{r['testbed_build_s']:6.2f} {r['mininet_build_s']:8.2f} | "
              f"{r['testbed_ping_s']:6.2f} {r['mininet_ping_s']:8.2f} | "
              f"{r['testbed_down_s']:6.2f} {r['mininet_down_s']:8.2f} | "
              f"{r['testbed_loss_percent']:.0f} / {r['mininet_loss_percent']:.0f}  | "
              f"{r['testbed_cli_s']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
