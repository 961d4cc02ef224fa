"""`testbed run TOPOLOGY SCENARIO`: build the lab, play the scenario, keep the results."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from testbed.units import UnitError, parse_duration


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "run", help="play a scenario on a fresh lab and record it (root)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Build TOPOLOGY, start a real Prometheus in its management network, play "
                    "SCENARIO's steps (restart waves, crashes, link changes, ...) on a "
                    "monotonic clock while tcpdump records the declared captures, then "
                    "check the scenario's expect: (packet counts, rates, paths, PromQL "
                    "bounds), write results/<run-id>/ and remove the lab. Exits 1 when an "
                    "expectation does not pass. Ctrl-C or SIGTERM stops early: the lab is "
                    "removed and what was gathered is kept (pcaps too), marked incomplete.",
        epilog="""results/<run-id>/ holds:
  run.json        what ran: topology, scenario, seed, policy, time scale, complete or not
  schedule.json   every planned event (the same seed gives the same schedule)
  traces/         the restart-time traces the scenario's waves were shaped by, if any
  steps.jsonl     every executed event: planned, due and actual time, outcome
  series.csv      online fraction, login attempts/s, supernodes, ... (t, series, value)
  summary.json    outcome metrics: lowest online fraction, time to 90/95 %, amplification
  tsdb/           Prometheus TSDB snapshot: testbed results serve RUN
  report/         report.html with plots
  captures/       pcaps of the declared captures (a topology's capture: on a link, the
                  scenario's captures:) and index.json (what, where, filter, packets,
                  drops); kept when the run is interrupted
  verdicts.txt    the scenario's expect: checked over the pcaps and the run's Prometheus
  verdicts.json   (PASS/FAIL/VACUOUS/ERROR per expectation, file:line, observed vs bound);
  junit.xml       the same for CI systems. `testbed check RUN` re-checks later (pcaps)

scenario files: a timeline of steps (restart_wave, crash, start/stop, set_link,
partition/heal, add_nodes, set_policy, call, wait_until, run_playbook, mark), each key
described in docs/scenarios.md; expectations in docs/expectations.md.

exit status: 0 the run completed and every expectation passed; 1 it was interrupted or
failed, or an expectation did not pass (FAIL, VACUOUS or ERROR); 2 bad input (every
problem of the topology, scenario or expect: at file:line, before anything is built)

example:
  sudo testbed run topologies/skype-2007.yaml scenarios/skype-2007.yaml
  sudo testbed run topologies/skype-2007.yaml scenarios/capture-check.yaml
  testbed compare results/RUN1 results/RUN2""")
    p.add_argument("topology", metavar="TOPOLOGY", help="topology YAML file")
    p.add_argument("scenario", metavar="SCENARIO", help="scenario YAML file")
    p.add_argument("--set", dest="overrides", action="append", default=[],
                   metavar="NAME=VALUE",
                   help="override a topology parameter (wins over the scenario's params:)")
    p.add_argument("--seed", type=int, help="seed for every random choice (default: the "
                                            "scenario's)")
    p.add_argument("--results", default="results", metavar="DIR",
                   help="where run directories go (default ./results)")
    p.add_argument("--run-id", metavar="ID", help="name of the run directory (default: "
                                                   "date-time-scenario-random)")
    p.add_argument("--scrape-interval", type=positive_seconds, default=0.0, metavar="SECONDS",
                   help="Prometheus scrape interval (default: 1 s, and one more second per "
                        "250 scrape targets in larger labs, which one machine can scrape)")
    p.add_argument("--ui-port", type=int, default=9090, metavar="PORT",
                   help="loopback port for Prometheus's web UI during the run (default 9090, "
                        "or the next free one)")
    p.add_argument("--ui-address", default=None, metavar="ADDRESS",
                   help="address the UI listens on (default $TESTBED_UI_ADDRESS or "
                        "127.0.0.1; the lab VM sets 0.0.0.0 so Vagrant can forward it)")
    p.add_argument("--lab-name", metavar="NAME",
                   help="build the lab under this name instead of the topology's (to run "
                        "beside another lab of the same topology)")
    p.add_argument("--duration", type=duration_arg, metavar="DURATION",
                   help="run this long instead of the scenario's duration: seconds, or "
                        "with a unit (200s, 5m)")
    p.add_argument("--no-report", action="store_true", help="skip the HTML report")
    p.add_argument("--repeat", type=int, default=1, metavar="N",
                   help="run N times (seeds: the scenario's + 0..N-1), each in its own "
                        "directory under results/<run-id>/runs/, with a group summary "
                        "(median, interval, outcome classes): a sweep without a grid")
    p.add_argument("--check-only", action="store_true",
                   help="load and check both files and print the schedule; build nothing")
    p.set_defaults(run=run)


def duration_arg(text: str) -> float:
    """argparse type: '200', '200s' or '5m' -> seconds."""
    try:
        return parse_duration(text if text.strip()[-1:].isalpha() else f"{text}s")
    except UnitError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def positive_seconds(text: str) -> float:
    """argparse type for the scrape interval: seconds > 0 ('2', '2s', '500ms')."""
    seconds = duration_arg(text)
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: the interval must be more than 0 s")
    return seconds


def options_from(args: argparse.Namespace) -> Any:
    from testbed.cli.common import parse_overrides
    from testbed.metrics.forward import default_ui_address
    from testbed.scenario.run import RunOptions

    overrides = parse_overrides(args.overrides)
    return RunOptions(topology=Path(args.topology), scenario=Path(args.scenario),
                      overrides=overrides, results=Path(args.results), run_id=args.run_id,
                      seed=args.seed, scrape_interval=args.scrape_interval,
                      ui_port=args.ui_port, state_dir=args.state_dir,
                      ui_address=getattr(args, "ui_address", None) or default_ui_address(),
                      report=not args.no_report, duration=args.duration,
                      lab_name=getattr(args, "lab_name", None))


def run(args: argparse.Namespace) -> int:
    from testbed.scenario.run import Run, prepare

    if args.repeat != 1 and not args.check_only:
        from testbed.cli.sweep import repeat

        return repeat(args)
    options = options_from(args)
    prepared = prepare(options)
    if args.check_only:
        events = prepared.scenario.events
        print(f"{prepared.scenario.name}: {len(events)} events over {prepared.duration:g}s "
              f"(seed {prepared.scenario.seed}) on {len(prepared.topology.nodes)} nodes")
        for event in events[:40]:
            nodes = ",".join(event.nodes[:4]) + ("..." if len(event.nodes) > 4 else "")
            print(f"  {event.time:8.2f}s  step {event.step}  {event.action:<11} {nodes}")
        if len(events) > 40:
            print(f"  ... {len(events) - 40} more")
        for capture in prepared.captures:
            print(f"  capture {capture.name}: {capture.spec.node}:{capture.interface} "
                  f"{capture.spec.filter!r}  ({capture.where})")
        if prepared.scenario.expectations:
            print(f"  {len(prepared.scenario.expectations)} expectations, checked after the "
                  "run")
        return 0
    session = Run(options, prepared)
    session.execute()
    return 0 if session.complete and session.expectations_ok else 1
