"""Does the Patch-Tuesday wave raise the P2P CDN origin's load? Wave against control.

    sudo .venv/bin/python benchmarks/bench_cdn_wave.py                  # 3 seeds
    sudo .venv/bin/python benchmarks/bench_cdn_wave.py --repeat 5 --jobs 1
    sudo .venv/bin/python benchmarks/bench_cdn_wave.py --set seeds=20   # another topology

Four variants on topologies/p2p-cdn.yaml, the same seeds for each (2007 + r), each
differing from the one before in one thing:
  control      scenarios/p2p-cdn-evening.yaml               the evening, no reboot
  wave         scenarios/p2p-cdn-patch-day.yaml             + 2007's wave: 40 % of each
                                                              group (serving, viewing)
  unattended   scenarios/p2p-cdn-patch-day-unattended.yaml  the wave spares the viewers:
                                                              40 % of the serving PCs
  big-origin   scenarios/p2p-cdn-unattended-big-origin.yaml + an origin of 16 Mbit/s
All four gate their first mark on the same share of the evening's requests, so windows
are anchored there: `before` is up to the mark, `wave` the 90 s from it (the 30 s wave
and 60 s after). Per run: the origin's mean egress in each window (Mbit/s, the kernel's
counter of its uplink), the share of the PCs' payload from peers, downloads finished and
failed, the completion-time p95. Printed: median [interval] per variant over the seeds
(testbed/sweep/stats.py), and the wave's effect, paired by seed: the origin's mean in
the wave window minus the control's in the same window.

Runs finished before (same --results and --set) are kept, not run again: a larger
--repeat adds seeds, an interrupted benchmark goes on where it stopped.

--jobs runs labs side by side (each under its own lab name): faster, and fair between
the variants since each round runs one of each together; each run's row gives the
highest 1-minute load average of its round.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.cells import cell  # noqa: E402
from testbed.metrics.cdn_outcome import window_figures  # noqa: E402
from testbed.metrics.series import load_run  # noqa: E402

TOPOLOGY = REPO / "topologies" / "p2p-cdn.yaml"
VARIANTS = {
    "control": REPO / "scenarios" / "p2p-cdn-evening.yaml",
    "wave": REPO / "scenarios" / "p2p-cdn-patch-day.yaml",
    "unattended": REPO / "scenarios" / "p2p-cdn-patch-day-unattended.yaml",
    "big-origin": REPO / "scenarios" / "p2p-cdn-unattended-big-origin.yaml",
}
ROW = "bench-cdn-wave.json"  # a finished run's row, beside its results
WAVE_WINDOW = 90.0  # s from the mark: the 30 s wave and the 60 s after it
KEYS = ("origin_mbit_before", "origin_mbit_wave_window", "peer_share_before",
        "peer_share_wave_window", "downloads_completed", "downloads_failed",
        "completion_p95_s", "load_average")


def figures(run_dir: Path) -> dict[str, object]:
    """The run's figures, windows anchored at its first mark."""
    run = load_run(run_dir)
    marks = run.marks()
    if not marks:
        raise SystemExit(f"{run_dir}: no mark in steps.jsonl (did the run end early?)")
    at = marks[0][0]
    before = window_figures(run.series, 0.0, at)
    wave = window_figures(run.series, at, at + WAVE_WINDOW)

    def mbit(value: float | None) -> float | None:
        return None if value is None else round(8 * value / 1e6, 3)

    found: dict[str, object] = {
        "origin_mbit_before": mbit(before["origin_mean_bytes_per_s"]),
        "origin_mbit_wave_window": mbit(wave["origin_mean_bytes_per_s"]),
        "peer_share_before": before["peer_share"],
        "peer_share_wave_window": wave["peer_share"],
    }
    for key in ("downloads_completed", "downloads_failed", "completion_p95_s"):
        found[key] = run.summary.get(key)
    return found


def earlier(results: Path, run_id: str, overrides: list[str]) -> dict[str, object] | None:
    """The row of a run this benchmark finished before with the same --set (so an
    interrupted benchmark, or a larger --repeat, runs only what is missing)."""
    for run_dir in [results / run_id, *sorted(results.glob(f"{run_id}-try*"))]:
        try:
            kept = json.loads((run_dir / ROW).read_text())
        except (OSError, ValueError):
            continue  # not a run directory, or a run that did not finish
        if kept.get("set") == overrides:
            return dict(kept["row"])
    return None


def base_id(variant: str, seed: int) -> str:
    """A run's directory name; a retry of it adds -tryN."""
    return f"{variant}-s{seed}"


def launch(variant: str, seed: int, results: Path, overrides: list[str]
           ) -> tuple[subprocess.Popen[bytes], Path]:
    run_id = base_id(variant, seed)
    attempt = 1
    while (results / run_id).exists():  # an earlier attempt that did not finish: kept
        attempt += 1
        run_id = f"{base_id(variant, seed)}-try{attempt}"
    argv = [sys.executable, "-m", "testbed", "run", str(TOPOLOGY), str(VARIANTS[variant]),
            "--seed", str(seed), "--results", str(results), "--run-id", run_id,
            "--lab-name", f"cdn{variant[:3]}{seed % 1000}", "--no-report"]
    for item in overrides:
        argv += ["--set", item]
    with (results / f"{run_id}.log").open("wb") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
    return proc, results / run_id


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n".join(__doc__.splitlines()[1:]))
    parser.add_argument("--repeat", type=int, default=3, metavar="N",
                        help="seeds per variant (2007 + r; default 3)")
    parser.add_argument("--jobs", type=int, default=len(VARIANTS), metavar="N",
                        help=f"labs at once (default {len(VARIANTS)}: one round of the "
                             "variants, one seed)")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="topology parameter for every run")
    parser.add_argument("--results", default="results/bench-cdn-wave")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("error: builds labs: run as root (sudo .venv/bin/python ...)", file=sys.stderr)
        return 2
    results = Path(args.results).resolve()
    results.mkdir(parents=True, exist_ok=True)
    found: dict[str, list[dict[str, object]]] = {v: [] for v in VARIANTS}
    by_seed: dict[tuple[str, int], dict[str, object]] = {}
    queue = []
    for v, seed in [(v, 2007 + r) for r in range(args.repeat) for v in VARIANTS]:
        kept = earlier(results, base_id(v, seed), args.set)
        if kept is None:
            queue.append((v, seed))
            continue
        found[v].append(kept)
        by_seed[(v, seed)] = kept
        print(f"== {v} seed {seed}: kept from an earlier run: " + json.dumps(kept))
    while queue:
        batch, queue = queue[:max(1, args.jobs)], queue[max(1, args.jobs):]
        running = [(v, s, *launch(v, s, results, args.set)) for v, s in batch]
        load = 0.0  # the highest 1-minute load average while the round ran
        while any(proc.poll() is None for _, _, proc, _ in running):
            load = max(load, os.getloadavg()[0])
            time.sleep(5)
        for variant, seed, proc, run_dir in running:
            code = proc.wait()
            if not (run_dir / "summary.json").exists():
                print(f"== {variant} seed {seed}: failed (exit {code}); see "
                      f"{results}/{run_dir.name}.log", flush=True)
                continue
            row = {**figures(run_dir), "load_average": round(load, 1)}
            (run_dir / ROW).write_text(json.dumps({"set": args.set, "row": row}))
            found[variant].append(row)
            by_seed[(variant, seed)] = row
            print(f"== {variant} seed {seed}: " + json.dumps(row), flush=True)
    width = 28 if args.repeat > 1 else 14
    print(f"\n{'figure':<26}" + "".join(f"{v:>{width}}" for v in VARIANTS))
    for key in KEYS:
        print(f"{key:<26}" + "".join(f"{cell(found[v], key):>{width}}" if found[v] else
                                     f"{'-':>{width}}" for v in VARIANTS))
    for variant in [v for v in VARIANTS if v != "control"]:
        effect = []
        for r in range(args.repeat):
            wave, control = by_seed.get((variant, 2007 + r)), by_seed.get(("control",
                                                                            2007 + r))
            if wave and control and isinstance(wave["origin_mbit_wave_window"], float) \
                    and isinstance(control["origin_mbit_wave_window"], float):
                effect.append({"delta": round(wave["origin_mbit_wave_window"]
                                              - control["origin_mbit_wave_window"], 3)})
        if effect:
            print(f"{variant + ' - control':<26}{cell(effect, 'delta'):>{width}}  origin "
                  f"Mbit/s in the {WAVE_WINDOW:g} s from the mark, paired by seed")
    print(f"{args.repeat} seed(s) (2007-{2006 + args.repeat}) per variant, {args.jobs} "
          f"lab(s) at once; origin figures in Mbit/s; runs in {results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
