"""The same small outage on two clocks: do the dimensionless outcomes depend on time_scale?

    sudo .venv/bin/python benchmarks/bench_time_scale.py                 # scales 0.2 and 0.4
    sudo .venv/bin/python benchmarks/bench_time_scale.py --scales 0.2,0.1 --policy fixed
    sudo .venv/bin/python benchmarks/bench_time_scale.py --repeat 3   # seeds 2007, 2008, 2009

`overlay.time_scale` is a change of clock (testbed/peer/clock.py): overlay durations x s,
rates / s. The scenario is written in real seconds (`clock: real`, converted to the lab's
clock at each scale: wave window, down times, duration, judging time); it runs with
`testbed run`'s entry point on the small default topology (26 peers), and prints each
run's outcome class and dimensionless outcomes side by side, with the calibration
table's values. With --repeat N every scale runs N seeds (the scenario's seed + r, the
same seeds at every scale) and each outcome is printed as its median and interval
(testbed/sweep/stats.py), with the count of each outcome class. A faster clock costs CPU
(rates per lab second grow as 1/s): where the machine cannot keep up, the outcomes
drift, which is what this shows.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.cells import cell  # noqa: E402
from testbed.metrics.calibration import calibration_values  # noqa: E402
from testbed.metrics.series import load_run  # noqa: E402
from testbed.sweep.execute import execute  # noqa: E402

SMALL = {"homes": "20", "supernodes": "4", "corp_hosts": "2"}
# the 2007 wave in REAL seconds: 14 min, judged 5 min after the last rebooted PC is back
SCENARIO = """\
name: time-scale-{scale}
seed: 2007
clock: real
duration: 850s
outcome: {{judge_after: 300s}}
steps:
  - at: 0s
    action: wait_until
    query: (sum(peer_logged_in{{kind="peer"}}) / count(peer_info{{kind="peer"}})) >= 0.95
    timeout: 120s
  - at: 50s
    action: restart_wave
    select: {{group: supernode-pc, fraction: 0.4}}
    window: 150s
    spread: front-loaded
    down_time: {{kind: uniform, min: 100s, max: 200s}}
    mode: hard
  - at: 50s
    action: restart_wave
    select: {{kind: peer, labels: {{os: windows}}, group: [home-pc], fraction: 0.4}}
    window: 150s
    spread: front-loaded
    down_time: {{kind: uniform, min: 100s, max: 200s}}
    mode: hard
"""
KEYS = ("outcome_class", "min_online_fraction", "final_online_fraction", "amplification",
        "time_to_recover_s")


def run_at(scale: float, policy: str, results: Path, repeat: int) -> dict[str, object]:
    from testbed.scenario.run import RunOptions

    text = SCENARIO.format(scale=scale)
    scenario = Path(tempfile.mkdtemp(prefix="tscale-")) / f"scale-{scale}.yaml"
    scenario.write_text(text)
    overrides = {**SMALL, "policy": policy, "sn_overload": "drop-role" if policy == "2007"
                 else "busy", "time_scale": f"{scale:g}"}
    options = RunOptions(topology=REPO / "topologies" / "skype-2007.yaml", scenario=scenario,
                         overrides=overrides, results=results,
                         run_id=f"scale-{scale}-r{repeat}", seed=2007 + repeat, report=False,
                         lab_name=f"tscale{os.getpid() % 10000}")
    run_dir, _ = execute(options)
    summary = json.loads((run_dir / "summary.json").read_text())
    found: dict[str, object] = {k: summary.get(k) for k in KEYS}
    found.update(calibration_values(load_run(run_dir)))
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", default="0.2,0.4")
    parser.add_argument("--policy", default="2007", choices=("2007", "fixed"))
    parser.add_argument("--repeat", type=int, default=1, metavar="N",
                        help="seeds per scale (2007 + r); outcomes as median [interval]")
    parser.add_argument("--results", default="results/bench-time-scale")
    args = parser.parse_args()
    scales = [float(s) for s in args.scales.split(",")]
    found: dict[float, list[dict[str, object]]] = {s: [] for s in scales}
    for r in range(args.repeat):  # a whole round of scales per seed: drift hits both alike
        for s in scales:
            found[s].append(run_at(s, args.policy, Path(args.results), r))
            print(f"== scale {s:g}, seed {2007 + r}: {found[s][-1].get('outcome_class')}",
                  flush=True)
    keys = list(dict.fromkeys(k for runs in found.values() for v in runs for k in v))
    width = 30 if args.repeat > 1 else 18
    print(f"{'outcome':<24}" + "".join(f"{f'time_scale {s:g}':>{width}}" for s in scales))
    for key in keys:
        print(f"{key:<24}" + "".join(f"{cell(found[s], key):>{width}}" for s in scales))
    print(f"{args.repeat} run(s) per scale (seeds 2007-{2006 + args.repeat}); numbers are "
          "median [interval] over them. time_to_recover_s is in lab seconds: divide by "
          "the scale for real seconds")
    return 0


if __name__ == "__main__":
    sys.exit(main())
