"""A run's results directory, results/<run-id>/: the inputs kept with it, run.json (what
ran and whether it completed), the expectations' verdicts, the series and outcome metrics
read from the run's Prometheus (series.csv, summary.json), the TSDB snapshot and the
report. Where summary.json is written."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

from testbed.capture.verdict import Verdict
from testbed.lab.state import LabState
from testbed.metrics.cdn_outcome import (
    cdn_outcome_class,
    cdn_queries,
    cdn_summary,
    has_cdn,
    outcome_line,
)
from testbed.metrics.classify import OutcomeThresholds, classify, read_step_log, trigger_span
from testbed.metrics.outcome import (
    fetch_series,
    needing_login,
    series_queries,
    summarize,
    write_series_csv,
)
from testbed.metrics.prometheus import PrometheusServer
from testbed.metrics.targets import scrape_health
from testbed.metrics.targets import warning as scrape_warning
from testbed.plan.model import NetworkPlan
from testbed.process.supervisor import start_time
from testbed.scenario.run.options import Prepared, RunOptions
from testbed.scenario.run.trigger import trigger_from_log, trigger_of
from testbed.topology.model import OverlaySettings


@dataclass
class RunStatus:
    started_unix: float = 0.0  # t=0 of the schedule; 0 until the engine starts
    ended_unix: float = 0.0
    complete: bool = False
    error: str | None = None


class Results:
    def __init__(self, options: RunOptions, prepared: Prepared,
                 say: Callable[[str], None]) -> None:
        self.options = options
        self.prepared = prepared
        self.dir = prepared.run_dir
        self.say = say
        self.overlay = prepared.topology.overlay or OverlaySettings()

    def write_inputs(self) -> None:
        """The topology, scenario, traces and resolved schedule, kept with the run."""
        shutil.copyfile(self.options.topology, self.dir / "topology.yaml")
        shutil.copyfile(self.options.scenario, self.dir / "scenario.yaml")
        scenario = self.prepared.scenario
        traces = {step.trace for step in scenario.steps if step.trace}
        if traces:  # what the restart waves were shaped by, kept with the run
            (self.dir / "traces").mkdir(exist_ok=True)
            for trace in sorted(traces):
                shutil.copyfile(trace, self.dir / "traces" / Path(trace).name)
        events = [asdict(e) for e in scenario.events]
        (self.dir / "schedule.json").write_text(json.dumps(events, indent=1))

    def write_run_json(self, status: RunStatus, prometheus_url: str | None,
                       state: LabState | None) -> None:
        overlay = self.overlay
        # the login server's capacity per lab second (rates are written in real units)
        login = (overlay.login.rate if overlay.login else 200.0) / overlay.time_scale
        trigger = trigger_from_log(self.dir / "steps.jsonl") or trigger_of(
            self.prepared.scenario.events)
        started = status.started_unix
        info: dict[str, Any] = {
            "run_id": self.dir.name, "topology": str(self.options.topology),
            "scenario": self.prepared.scenario.name,
            "scenario_file": str(self.options.scenario),
            "seed": self.prepared.scenario.seed, "lab": self.prepared.topology.name,
            "params": self.prepared.topology.params,
            "started": dt.datetime.fromtimestamp(started or time.time(),
                                                 dt.UTC).isoformat(timespec="seconds"),
            "started_unix": started or None,
            "duration_s": round((status.ended_unix or time.time()) - started, 1)
            if started else 0.0,
            "planned_duration_s": self.prepared.duration,
            "complete": status.complete, "error": status.error,
            "trigger": asdict(trigger) if trigger else None,
            "login_capacity": login,
            "peers": len(self.prepared.peers), "time_scale": overlay.time_scale,
            "policy": overlay.policy,
            "supernode_overload": (overlay.supernode.overload if overlay.supernode
                                   else "busy"),
            "scrape_interval_s": self.options.scrape_interval,
            "prometheus_url": prometheus_url,
            "ended_unix": status.ended_unix,
            # who writes this run: `testbed results recover` refuses a run still going
            "runner": {"pid": os.getpid(), "start_time": start_time(os.getpid())},
        }
        if self.prepared.workload == "sip":
            from testbed.sip.monitor import run_info

            info.update(run_info(self.prepared.plan))
        (self.dir / "run.json").write_text(json.dumps(info, indent=1))
        if state is not None and state.summary_path.exists():
            shutil.copyfile(state.summary_path, self.dir / "lab.json")

    def check(self, prometheus_url: str | None) -> list[Verdict] | None:
        """The scenario's expectations, while the run's Prometheus still answers (call
        write_run_json first: `testbed check` reads t=0 from run.json)."""
        if not self.prepared.scenario.expectations:
            return None
        from testbed.capture.evaluate import check_run
        from testbed.capture.verdict import report, write_verdicts

        verdicts = check_run(self.dir, self.prepared.scenario.expectations, prometheus_url)
        write_verdicts(self.dir, verdicts, f"testbed run {self.dir.name}")
        self.say("== expectations:")
        for line in report(verdicts).splitlines():
            self.say(f"   {line}")
        return verdicts

    def collect(self, prometheus: PrometheusServer, status: RunStatus) -> None:
        """series.csv and summary.json from the run's Prometheus, then its TSDB snapshot."""
        peers = self.prepared.peers
        summary = write_outcome(self.dir, prometheus, peers, len(peers), status.started_unix,
                                status.ended_unix, self.options.scrape_interval,
                                status.complete, self.prepared.workload,
                                self.prepared.scenario.outcome, self.prepared.plan)
        (self.dir / "summary.json").write_text(json.dumps(summary, indent=1))
        if (alarm := scrape_warning(summary["scrape_targets"])) is not None:
            self.say(alarm)
        snapshot = prometheus.snapshot(self.dir / "tsdb")
        if snapshot is not None:
            shutil.rmtree(prometheus.data, ignore_errors=True)
        self.say(f"== outcome: {summary['outcome_class']} ({summary['outcome_reason']})")
        if peers:
            self.say(f"== lowest online {_pct(summary['min_online_fraction'])}, final "
                     f"{_pct(summary['final_online_fraction'])}, 95 % online again after "
                     f"{_secs(summary['time_to_95_s'])}")
        if has_cdn(self.prepared.plan):
            self.say(outcome_line(summary))

    def write_report(self) -> None:
        try:
            from testbed.metrics.report import write_report
        except ImportError:
            return
        try:
            path = write_report(self.dir)
            self.say(f"== report: {path}")
        except Exception as exc:  # noqa: BLE001 - the data is kept even if a plot fails
            self.say(f"== report failed ({exc}); the data is in {self.dir}")


class RangeQueryable(Protocol):
    """A run's Prometheus, live or started on its data afterwards."""

    def query_range(self, promql: str, start: float, end: float, step: float
                    ) -> list[dict[str, Any]]: ...

    def query(self, promql: str, at: float | None = None) -> list[dict[str, Any]]: ...


def write_outcome(run_dir: Path, prometheus: RangeQueryable, peers: list[str],
                  peer_count: int, began: float, ended: float, step: float,
                  complete: bool, workload: str = "overlay",
                  thresholds: OutcomeThresholds | None = None,
                  plan: NetworkPlan | None = None) -> dict[str, Any]:
    """series.csv from a run's Prometheus (live, or started on its data afterwards), and
    the outcome metrics of summary.json with the outcome class, returned: the same for a
    finished run and for one recovered from disk."""
    queries = series_queries(peer_count or 1, step, workload)
    if plan is not None:
        queries.update(cdn_queries(plan, step))  # the P2P CDN's, if the lab has one
    series = fetch_series(prometheus, queries, began, ended, step)
    write_series_csv(series, run_dir / "series.csv")
    trigger = trigger_from_log(run_dir / "steps.jsonl")
    per_node: dict[str, list[tuple[float, float]]] = {name: [] for name in peers}
    for result in prometheus.query_range(per_user_query(workload, step), began, ended, step):
        node = result["metric"].get("node", "")
        per_node[node] = [(float(t) - began, float(v)) for t, v in result["values"]]
    needed = needing_login(per_node, trigger.start if trigger else 0.0, ended - began, step)
    summary = summarize(series, trigger, needed, complete)
    if plan is not None:  # the P2P CDN's outcome, if the lab has one
        summary = cdn_summary(plan, summary, series, trigger, prometheus, began, ended)
    summary["scrape_targets"] = scrape_health(prometheus, began, ended)  # any never seen?
    summary.update(classify(series.get("online_fraction", []),
                            trigger_span(read_step_log(run_dir / "steps.jsonl")),
                            thresholds or OutcomeThresholds(), ended - began))
    if plan is not None and not peers and has_cdn(plan):
        summary.pop("final_online_median", None)  # no users online or not: nothing to
        summary.update(cdn_outcome_class())  # classify
    return summary


def per_user_query(workload: str, step: float) -> str:
    """One series per user of the run: logged in (overlay) or registered (SIP)."""
    if workload == "sip":
        from testbed.sip.queries import per_user

        return per_user(step)
    return 'peer_logged_in{kind="peer"}'


def _pct(value: Any) -> str:
    return "?" if value is None else f"{value:.0%}"


def _secs(value: Any) -> str:
    return "never (not within the run)" if value is None else f"{value:.0f}s"
