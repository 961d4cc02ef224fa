"""Scenario engine lateness: 1000 scheduled restart actions against a real lab.

Builds a 100-host lab (tree topology, a `sleep` service in every host so each reboot
really kills a process), schedules 1000 restart actions (500 reboots: host_down, then
host_up 1 s later) spread over 30 s, plays them on the engine, and prints the lateness of
actual vs due times (p50, p99, max). Target: p99 <= 50 ms.

    sudo .venv/bin/python benchmarks/bench_engine.py [--hosts 100] [--actions 1000]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.tree_topology import tree_yaml  # noqa: E402
from testbed.lab.lab import Lab  # noqa: E402
from testbed.metrics.exporter import TestbedExporter  # noqa: E402
from testbed.plan.build import build_plan  # noqa: E402
from testbed.progress import Progress  # noqa: E402
from testbed.scenario.actions import (
    Event,  # noqa: E402
    RunContext,  # noqa: E402
)
from testbed.scenario.engine import Engine, StepLog  # noqa: E402
from testbed.topology.loader import load_topology_text  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=100)
    parser.add_argument("--actions", type=int, default=1000)
    parser.add_argument("--window", type=float, default=30.0)
    args = parser.parse_args()
    text = tree_yaml(args.hosts, "benchengine").replace(
        "    kind: host\n", "    kind: host\n    command: sleep 100000\n")
    topology = load_topology_text(text, "bench-engine")
    plan = build_plan(topology)
    rng = random.Random(1)
    hosts = [n.name for n in plan.nodes.values() if n.kind == "host"]
    events: list[Event] = []
    reboots = args.actions // 2
    rounds = -(-reboots // len(hosts))
    slot = args.window / rounds  # each host reboots once per slot, down for 1 s
    for k in range(reboots):
        host, turn = hosts[k % len(hosts)], k // len(hosts)
        at = turn * slot + rng.uniform(0, max(0.0, slot - 1.2))
        events += [Event(at, "host_down", (host,), {"mode": "hard"}, 0),
                   Event(at + 1.0, "host_up", (host,), {}, 0)]
    with tempfile.TemporaryDirectory() as tmp:
        lab = Lab.up(topology, state_dir=tmp, progress=Progress())
        try:
            context = RunContext(lab.runtime, TestbedExporter(plan))
            log = StepLog(Path(tmp) / "steps.jsonl")
            began = time.monotonic()
            Engine(events, context, log).run(args.window + 2)
            took = time.monotonic() - began
            import json
            lines = [json.loads(x) for x in log.path.read_text().splitlines()]
        finally:
            lab.down(Progress())
    late = sorted(e["lateness"] * 1000 for e in lines)
    errors = [e for e in lines if e["outcome"].startswith("error")]
    p99 = late[int(len(late) * 0.99) - 1]
    print(f"{len(lines)} actions on {args.hosts} hosts over {args.window:g}s "
          f"(played in {took:.1f}s), {len(errors)} failed")
    print(f"lateness: p50 {statistics.median(late):.1f} ms, p99 {p99:.1f} ms, "
          f"max {late[-1]:.1f} ms (target p99 <= 50 ms: "
          f"{'met' if p99 <= 50 else 'NOT met'})")
    return 0 if not errors else 1


if __name__ == "__main__":
    sys.exit(main())
