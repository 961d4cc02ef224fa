"""One scenario run, end to end: `testbed run TOPOLOGY SCENARIO`.

1. load and check topology and scenario, resolve the schedule (bad input fails here,
   before anything is built);
2. build the lab, start the testbed exporter and the lab's Prometheus;
3. start the declared captures (topology `capture:`, scenario `captures:`), then play
   the schedule on the engine, printing progress;
4. whatever happens (the end, a failure, Ctrl-C, SIGTERM): stop the engine and the
   captures (captures/index.json), check the scenario's `expect:` while its Prometheus
   still answers (verdicts.txt/.json, junit.xml), export the series and outcome metrics,
   snapshot the TSDB, write the report, remove the lab. A run that did not finish is
   marked `complete: false` and keeps what it gathered, pcaps included.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import secrets
import shutil
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol, TextIO

from testbed.backends.netns import NetnsBackend
from testbed.capture.declared import CaptureSet, Placed, place, planned_nodes
from testbed.capture.resolve import precheck
from testbed.capture.verdict import Verdict
from testbed.errors import MissingKernelFeature, ScenarioError
from testbed.lab.lifecycle import bring_up, tear_down
from testbed.lab.runtime import LabRuntime
from testbed.lab.state import LabState, state_root
from testbed.links.change import needs_netem
from testbed.metrics.exporter import TestbedExporter
from testbed.metrics.outcome import (
    Trigger,
    fetch_series,
    needing_login,
    series_queries,
    summarize,
    write_series_csv,
)
from testbed.metrics.prometheus import PrometheusServer
from testbed.metrics.targets import scrape_health
from testbed.metrics.targets import warning as scrape_warning
from testbed.plan.build import build_plan
from testbed.plan.model import NetworkPlan
from testbed.progress import Progress
from testbed.scenario.actions import Event
from testbed.scenario.engine import Engine, StepLog
from testbed.scenario.executors import RunContext
from testbed.scenario.loader import Scenario, load_scenario, scenario_params
from testbed.topology.loader import load_topology
from testbed.topology.model import OverlaySettings, Topology


@dataclass
class RunOptions:
    topology: Path
    scenario: Path
    overrides: dict[str, str] = field(default_factory=dict)
    results: Path = Path("results")
    run_id: str | None = None
    seed: int | None = None
    scrape_interval: float = 1.0
    ui_port: int = 9090
    ui_address: str = "127.0.0.1"  # where the UI forwarder listens (TESTBED_UI_ADDRESS)
    state_dir: str | None = None
    report: bool = True
    progress_every: float = 10.0
    duration: float | None = None  # overrides the scenario's duration:
    lab_name: str | None = None  # overrides the topology's name: (labs side by side)


@dataclass
class Prepared:
    topology: Topology
    plan: NetworkPlan
    scenario: Scenario
    run_dir: Path
    duration: float
    captures: list[Placed] = field(default_factory=list)


def prepare(options: RunOptions) -> Prepared:
    """Everything that can fail on bad input, before a lab exists."""
    overrides = {**scenario_params(options.scenario), **options.overrides}
    topology = load_topology(options.topology, overrides)
    if options.lab_name:
        topology = dataclasses.replace(topology, name=options.lab_name)
    scenario = load_scenario(options.scenario, topology, options.seed)
    plan = build_plan(topology)
    captures, problems = place(topology, plan, scenario.captures)
    problems += precheck(scenario.expectations, planned_nodes(plan),
                         [(c.name, c.spec.node, c.interface) for c in captures])
    if problems:
        raise ScenarioError(problems)
    last = max((e.time for e in scenario.events), default=0.0)
    duration = options.duration or scenario.duration or last + 60.0
    run_id = options.run_id or (dt.datetime.now().strftime("%Y%m%d-%H%M%S-")
                                + f"{scenario.name}-{secrets.token_hex(2)}")
    return Prepared(topology, plan, scenario, options.results / run_id, duration, captures)


def trigger_of(events: list[Event]) -> Trigger | None:
    """The restart wave (or crash) as planned: from the first host going down to the last."""
    downs = [e.time for e in events if e.action in ("host_down", "kill")]
    return Trigger(min(downs), max(downs)) if downs else None


def trigger_from_log(path: Path) -> Trigger | None:
    """The same from the step log's actual times (wait_until may have shifted it)."""
    if not path.exists():
        return None
    downs = []
    for line in path.read_text().splitlines():
        entry = json.loads(line)
        if entry.get("action") in ("host_down", "kill") and "actual" in entry:
            downs.append(float(entry["actual"]))
    return Trigger(round(min(downs), 3), round(max(downs), 3)) if downs else None


class _Processes(Protocol):
    def live_processes(self, name: str) -> list[Any]: ...
    def reload(self, name: str) -> int: ...


class _DownMarkers(Protocol):
    def is_down(self, node: str) -> bool: ...


def died_on_its_own(node: str, runtime: _Processes, state: _DownMarkers) -> bool:
    """True when none of the node's services runs and no reboot explains it.

    A reboot by another command (a playbook's `testbed reboot`) marks the node down
    before it kills anything and clears the mark only after the new services are
    journaled. So: dead in the journal, then no mark, then still dead in the journal
    is a crash; a mark, or new processes on the second look, is a reboot."""
    if runtime.live_processes(node) or runtime.reload(node):
        return False
    if state.is_down(node):
        return False
    return not runtime.reload(node)


def overlay_peers(plan: NetworkPlan) -> list[str]:
    """The overlay's users: reference peers, without capacity held back for add_nodes."""
    return sorted(n.name for n in plan.nodes.values()
                  if n.kind == "peer" and n.node.command is None and n.namespace
                  and not n.node.held_back)


class Run:
    def __init__(self, options: RunOptions, prepared: Prepared, out: TextIO = sys.stderr
                 ) -> None:
        self.options = options
        self.p = prepared
        self.out = out
        self.run_dir = prepared.run_dir
        self.overlay = prepared.topology.overlay or OverlaySettings()
        self.peers = overlay_peers(prepared.plan)
        self.backend = NetnsBackend()
        self.state = LabState(state_root(options.state_dir), prepared.topology.name)
        self.engine: Engine | None = None
        self.prometheus: PrometheusServer | None = None
        self.exporter: TestbedExporter | None = None
        self.started_unix = 0.0
        self.ended_unix = 0.0
        self.complete = False
        self.error: str | None = None
        self.captures = CaptureSet(prepared.captures, self.run_dir / "captures")
        self.verdicts: list[Verdict] | None = None  # None: not checked (yet)

    @property
    def expectations_ok(self) -> bool:
        """True when the scenario has no `expect:` or every expectation passed."""
        if not self.p.scenario.expectations:
            return True
        return self.verdicts is not None and all(v.ok for v in self.verdicts)

    def say(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    # --- the run --------------------------------------------------------------------
    def check_kernel(self) -> None:
        """Refuse, before anything is built, a scenario this kernel cannot play."""
        steps = self.p.scenario.steps
        wanted = [i for i, step in enumerate(steps)
                  if step.action == "set_link" and step.link and needs_netem(step.link)]
        if wanted and os.geteuid() == 0 and not self.backend.have_netem():
            where = ", ".join(self.p.scenario.where(i) for i in wanted)
            raise MissingKernelFeature(
                f"{where}: set_link asks for delay/jitter, which needs the sch_netem kernel "
                "module, and this kernel does not have it (modprobe sch_netem fails). "
                "Bandwidth, queue and loss changes work without it; the lab VM (vagrant up) "
                "has netem. Nothing was built.")

    def execute(self) -> Path:
        self.check_kernel()
        self.run_dir.mkdir(parents=True, exist_ok=False)
        self._write_inputs()
        self.say(f"== run {self.run_dir.name}: {self.p.scenario.name} on "
                 f"{self.p.topology.source} ({len(self.p.topology.nodes)} nodes, "
                 f"{len(self.peers)} peers, policy {self.overlay.policy}, "
                 f"time scale {self.overlay.time_scale:g})")
        began = time.monotonic()
        bring_up(self.p.topology, self.p.plan, self.backend, self.state, Progress())
        self.say(f"== lab up in {time.monotonic() - began:.1f}s")
        try:
            self._start_captures()
            self._monitor()
            self._play()
            self.complete = True
        except KeyboardInterrupt:
            self.error = "interrupted (Ctrl-C or SIGTERM)"
            self.say(f"== {self.error}: keeping the results gathered so far")
        except Exception as exc:
            self.error = f"{type(exc).__name__}: {exc}"
            raise
        finally:
            with _signals_held():
                self._finish()
        return self.run_dir

    def _write_inputs(self) -> None:
        shutil.copyfile(self.options.topology, self.run_dir / "topology.yaml")
        shutil.copyfile(self.options.scenario, self.run_dir / "scenario.yaml")
        traces = {step.trace for step in self.p.scenario.steps if step.trace}
        if traces:  # what the restart waves were shaped by, kept with the run
            (self.run_dir / "traces").mkdir(exist_ok=True)
            for trace in sorted(traces):
                shutil.copyfile(trace, self.run_dir / "traces" / Path(trace).name)
        events = [asdict(e) for e in self.p.scenario.events]
        (self.run_dir / "schedule.json").write_text(json.dumps(events, indent=1))
        self._write_run_json()

    def _start_captures(self) -> None:
        if not self.captures.placed:
            return
        self.captures.start()
        self.say(f"== capturing on {len(self.captures.running)} interfaces: "
                 + ", ".join(c.name for c in self.captures.running))

    def _monitor(self) -> None:
        self.exporter = TestbedExporter(self.p.plan, interval=max(1.0, self.options.
                                                                  scrape_interval))
        target = self.exporter.start()
        self.prometheus = PrometheusServer(self.p.plan, self.state, self.run_dir / "prometheus",
                                           self.backend.supervisor,
                                           self.options.scrape_interval, self.options.ui_port,
                                           self.options.ui_address)
        url = self.prometheus.start(self.overlay.metrics_port, target)
        self.say(f"== Prometheus: {url}  (scrapes {len(self.peers) + 1} peers every "
                 f"{self.options.scrape_interval:g}s; open it in a browser during the run)")
        self._write_run_json()

    def _play(self) -> None:
        assert self.exporter is not None
        runtime = LabRuntime(self.p.plan, self.state, self.backend)
        context = RunContext(runtime, self.exporter, self.prometheus, work_dir=self.run_dir)
        self.engine = Engine(self.p.scenario.events, context, StepLog(self.run_dir /
                                                                      "steps.jsonl"))
        self.started_unix = time.time()
        self._write_run_json()
        watcher = threading.Thread(target=self._watch, args=(runtime,), daemon=True)
        self.say(f"== playing {len(self.p.scenario.events)} events over "
                 f"{self.p.duration:.0f}s")
        watcher.start()
        try:
            self.engine.run(self.p.duration)
        finally:
            self.engine.stop()
            watcher.join(timeout=5)

    def _watch(self, runtime: LabRuntime) -> None:
        """Progress lines, and services that died on their own (recorded, not fatal)."""
        assert self.engine is not None and self.exporter is not None
        reported: set[str] = set()
        rebooting: set[str] = set()  # rebooted by another command (a playbook's reboot)
        next_line = 0.0
        while not self.engine.wait_stopped(2.0):
            down = self.state.down_nodes()
            for node in sorted(down - rebooting):
                if node in self.p.plan.nodes and self.exporter.is_up(node):
                    rebooting.add(node)
                    self.exporter.node_down(node)
                    self._observed("host_down", node)
            for node in sorted(rebooting - down):
                rebooting.discard(node)
                runtime.reload(node)
                self.exporter.node_up(node)
                self._observed("host_up", node)
            for node in self.peers:
                if node in down:
                    continue
                if self.exporter.is_up(node) and node not in reported \
                        and died_on_its_own(node, runtime, self.state):
                    reported.add(node)
                    self.exporter.crashed(node)
                    self.engine.log.write({"action": "crashed", "node": node,
                                           "actual": round(self.engine.elapsed(), 3),
                                           "outcome": "services died on their own"})
                elif node in reported and runtime.live_processes(node):
                    reported.discard(node)
            if self.engine.elapsed() >= next_line:
                next_line = self.engine.elapsed() + self.options.progress_every
                self.say(self._progress_line())

    def _observed(self, action: str, node: str) -> None:
        """A reboot another command did (a playbook's `testbed reboot`), as the watcher
        saw it (to within its 2 s poll): in the step log, so the report's trigger and
        the outcome metrics count it like a restart wave's."""
        assert self.engine is not None
        self.engine.log.write({"action": action, "node": node, "observed": True,
                               "actual": round(self.engine.elapsed(), 3),
                               "outcome": "rebooted by another command (e.g. a playbook)"})

    def _progress_line(self) -> str:
        assert self.engine is not None
        online = sn = None
        if self.prometheus is not None:
            try:
                queries = series_queries(len(self.peers) or 1, self.options.scrape_interval)
                online = self.prometheus.scalar(queries["online_fraction"])
                sn = self.prometheus.scalar(queries["supernodes"])
            except Exception:  # noqa: BLE001 - progress must never break a run
                pass
        steps = len(self.p.scenario.steps)
        return (f"   t={self.engine.elapsed():6.1f}s/{self.p.duration:.0f}s  step "
                f"{self.engine.current_step + 1}/{steps}  events {self.engine.done}/"
                f"{sum(max(1, len(e.nodes)) for e in self.p.scenario.events)}  online "
                f"{'?' if online is None else f'{online:6.1%}'}  supernodes "
                f"{'?' if sn is None else f'{sn:g}'}")

    # --- the end, whatever happened -------------------------------------------------
    def _finish(self) -> None:
        self.ended_unix = time.time()
        try:
            for what, step in (("stop every capture", self._stop_captures),
                               ("check the expectations", self._check),
                               ("collect every result", self._collect)):
                try:
                    step()
                except Exception as exc:  # noqa: BLE001 - the lab must still go away
                    self.say(f"== could not {what}: {exc}")
        finally:
            if self.prometheus is not None:
                self.prometheus.stop()
            if self.exporter is not None:
                self.exporter.stop()
            self._write_run_json()
            self.say("== removing the lab")
            for note in tear_down(self.backend, self.state, Progress()):
                self.say(f"   {note}")
        if self.options.report:
            self._report()
        self.say(f"== results: {self.run_dir}")

    def _stop_captures(self) -> None:
        for problem in self.captures.stop(relative_to=self.run_dir):
            self.say(f"== capture problem: {problem}")
        for entry in self.captures.entries:
            self.say(f"   capture {entry['name']}: {entry['packets']} packets, "
                     f"{entry['dropped'] or 0} dropped -> {entry['file']}")

    def _check(self) -> None:
        """The scenario's expectations, while the run's Prometheus still answers."""
        if not self.p.scenario.expectations:
            return
        from testbed.capture.evaluate import check_run
        from testbed.capture.verdict import report, write_verdicts

        self._write_run_json()  # run.json (t=0) and lab.json, as `testbed check` reads them
        url = self.prometheus.forwarder.url if self.prometheus and \
            self.prometheus.forwarder else None
        self.verdicts = check_run(self.run_dir, self.p.scenario.expectations, url)
        write_verdicts(self.run_dir, self.verdicts, f"testbed run {self.run_dir.name}")
        self.say("== expectations:")
        for line in report(self.verdicts).splitlines():
            self.say(f"   {line}")

    def _collect(self) -> None:
        if self.prometheus is None or not self.started_unix:
            return
        step = self.options.scrape_interval
        queries = series_queries(len(self.peers) or 1, step)
        series = fetch_series(self.prometheus, queries, self.started_unix, self.ended_unix,
                              step)
        write_series_csv(series, self.run_dir / "series.csv")
        trigger = trigger_from_log(self.run_dir / "steps.jsonl")
        per_node: dict[str, list[tuple[float, float]]] = {name: [] for name in self.peers}
        for result in self.prometheus.query_range('peer_logged_in{kind="peer"}',
                                                  self.started_unix, self.ended_unix, step):
            node = result["metric"].get("node", "")
            per_node[node] = [(float(t) - self.started_unix, float(v))
                              for t, v in result["values"]]
        needed = needing_login(per_node, trigger.start if trigger else 0.0,
                               self.ended_unix - self.started_unix, step)
        summary = summarize(series, trigger, needed, self.complete)
        summary["scrape_targets"] = scrape_health(self.prometheus, self.started_unix,
                                                  self.ended_unix)
        (self.run_dir / "summary.json").write_text(json.dumps(summary, indent=1))
        if (alarm := scrape_warning(summary["scrape_targets"])) is not None:
            self.say(alarm)
        snapshot = self.prometheus.snapshot(self.run_dir / "tsdb")
        if snapshot is not None:
            shutil.rmtree(self.prometheus.data, ignore_errors=True)
        self.say(f"== outcome: lowest online {_pct(summary['min_online_fraction'])}, final "
                 f"{_pct(summary['final_online_fraction'])}, 95 % online again after "
                 f"{_secs(summary['time_to_95_s'])}")

    def _report(self) -> None:
        try:
            from testbed.metrics.report import write_report
        except ImportError:
            return
        try:
            path = write_report(self.run_dir)
            self.say(f"== report: {path}")
        except Exception as exc:  # noqa: BLE001 - the data is kept even if a plot fails
            self.say(f"== report failed ({exc}); the data is in {self.run_dir}")

    def _write_run_json(self) -> None:
        overlay = self.overlay
        login = overlay.login.rate if overlay.login else None
        trigger = trigger_from_log(self.run_dir / "steps.jsonl") or trigger_of(
            self.p.scenario.events)
        info: dict[str, Any] = {
            "run_id": self.run_dir.name, "topology": str(self.options.topology),
            "scenario": self.p.scenario.name, "scenario_file": str(self.options.scenario),
            "seed": self.p.scenario.seed, "lab": self.p.topology.name,
            "params": self.p.topology.params,
            "started": dt.datetime.fromtimestamp(self.started_unix or time.time(),
                                                 dt.UTC).isoformat(timespec="seconds"),
            "started_unix": self.started_unix or None,
            "duration_s": round((self.ended_unix or time.time()) - self.started_unix, 1)
            if self.started_unix else 0.0,
            "planned_duration_s": self.p.duration,
            "complete": self.complete, "error": self.error,
            "trigger": asdict(trigger) if trigger else None,
            "login_capacity": login if login is not None else 200.0,
            "peers": len(self.peers), "time_scale": overlay.time_scale,
            "policy": overlay.policy,
            "supernode_overload": (overlay.supernode.overload if overlay.supernode
                                   else "busy"),
            "scrape_interval_s": self.options.scrape_interval,
            "prometheus_url": self.prometheus.forwarder.url
            if self.prometheus and self.prometheus.forwarder else None,
        }
        (self.run_dir / "run.json").write_text(json.dumps(info, indent=1))
        if self.state.summary_path.exists():
            shutil.copyfile(self.state.summary_path, self.run_dir / "lab.json")


@contextmanager
def _signals_held() -> Iterator[None]:
    """While results are written and the lab removed, Ctrl-C/SIGTERM wait (a second
    Ctrl-C would otherwise leave half a lab and no results)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT,
                                                                    signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _pct(value: Any) -> str:
    return "?" if value is None else f"{value:.0%}"


def _secs(value: Any) -> str:
    return "never (not within the run)" if value is None else f"{value:.0f}s"
