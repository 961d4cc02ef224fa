"""One scenario run, end to end: `testbed run TOPOLOGY SCENARIO`.

1. load and check topology and scenario, resolve the schedule (options.py: bad input
   fails here, before anything is built);
2. build the lab (through Lab), start the captures, the testbed exporter and the lab's
   Prometheus (recording.py);
3. play the schedule on the engine while the watcher (watcher.py) notices crashes and
   prints progress;
4. whatever happens (the end, a failure, Ctrl-C, SIGTERM): stop the engine and the
   captures, check the scenario's `expect:` while its Prometheus still answers, export
   the series and outcome metrics, snapshot the TSDB, write the report (results.py),
   remove the lab. A run that did not finish is marked `complete: false` and keeps what
   it gathered, pcaps included.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

from testbed.backends.base import Backend
from testbed.capture.verdict import Verdict
from testbed.lab.lab import Lab, default_backend
from testbed.metrics.cdn_outcome import cdn_queries
from testbed.metrics.exporter import TestbedExporter
from testbed.progress import Progress
from testbed.scenario.actions import RunContext
from testbed.scenario.engine import Engine, StepLog
from testbed.scenario.run.options import Prepared, RunOptions, check_kernel, resolved
from testbed.scenario.run.recording import Recording
from testbed.scenario.run.results import Results, RunStatus
from testbed.scenario.run.watcher import Watcher, progress_line
from testbed.topology.model import OverlaySettings


class Run:
    def __init__(self, options: RunOptions, prepared: Prepared, out: TextIO = sys.stderr,
                 backend: Backend | None = None) -> None:
        options = resolved(options, prepared)  # the scrape interval, by size if automatic
        self.options = options
        self.prepared = prepared
        self.out = out
        self.run_dir = prepared.run_dir
        self.backend = backend or default_backend()
        self.status = RunStatus()
        self.results = Results(options, prepared, self.say)
        self.recording = Recording(prepared, options, self.run_dir, self.say)
        self.lab: Lab | None = None
        self.engine: Engine | None = None
        self.verdicts: list[Verdict] | None = None  # None: not checked (yet)

    @property
    def complete(self) -> bool:
        return self.status.complete

    @property
    def expectations_ok(self) -> bool:
        """True when the scenario has no `expect:` or every expectation passed."""
        if not self.prepared.scenario.expectations:
            return True
        return self.verdicts is not None and all(v.ok for v in self.verdicts)

    def say(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def execute(self) -> Path:
        prepared = self.prepared
        check_kernel(prepared.scenario, self.backend.capabilities())
        self.run_dir.mkdir(parents=True, exist_ok=False)
        self.results.write_inputs()
        self._write_run_json()
        overlay = prepared.topology.overlay or OverlaySettings()
        self.say(f"== run {self.run_dir.name}: {prepared.scenario.name} on "
                 f"{prepared.topology.source} ({len(prepared.topology.nodes)} nodes, "
                 f"{len(prepared.peers)} peers, policy {overlay.policy}, "
                 f"time scale {overlay.time_scale:g})")
        began = time.monotonic()
        self.lab = Lab.up(prepared.topology, backend=self.backend,
                          state_dir=self.options.state_dir, progress=Progress())
        self.say(f"== lab up in {time.monotonic() - began:.1f}s")
        try:
            self.recording.start_captures()
            exporter = self.recording.start_monitoring(self.lab)
            self._write_run_json()
            self._play(self.lab, exporter)
            self.status.complete = True
        except KeyboardInterrupt:
            self.status.error = "interrupted (Ctrl-C or SIGTERM)"
            self.say(f"== {self.status.error}: keeping the results gathered so far")
        except Exception as exc:
            self.status.error = f"{type(exc).__name__}: {exc}"
            raise
        finally:
            with _signals_held():
                self._finish(self.lab)
        return self.run_dir

    def _play(self, lab: Lab, exporter: TestbedExporter) -> None:
        prepared = self.prepared
        context = RunContext(lab.runtime, exporter, self.recording.prometheus,
                             work_dir=self.run_dir)
        engine = self.engine = Engine(prepared.scenario.events, context,
                                      StepLog(self.run_dir / "steps.jsonl"))
        self.status.started_unix = time.time()
        self._write_run_json()
        events = sum(max(1, len(e.nodes)) for e in prepared.scenario.events)
        # a CDN without overlay peers: its PCs and origin, not an overlay that is not there
        cdn = None if prepared.peers else cdn_queries(prepared.plan,
                                                       self.options.scrape_interval)
        watcher = Watcher(
            engine, lab.runtime, lab.state, exporter, prepared.peers,
            set(prepared.plan.nodes), self.say,
            lambda: progress_line(engine, self.recording.prometheus, len(prepared.peers),
                                  self.options.scrape_interval,
                                  len(prepared.scenario.steps), events, prepared.duration,
                                  prepared.workload, cdn),
            self.options.progress_every)
        self.say(f"== playing {len(prepared.scenario.events)} events over "
                 f"{prepared.duration:.0f}s")
        watcher.start()
        try:
            engine.run(prepared.duration)
        finally:
            engine.stop()
            watcher.join(timeout=5)

    def _finish(self, lab: Lab) -> None:
        """Everything after the play, whatever happened: each part is tried on its own,
        and the lab goes away in any case."""
        self.status.ended_unix = time.time()
        prometheus = self.recording.prometheus
        try:
            for what, step in (("stop every capture", self.recording.stop_captures),
                               ("check the expectations", self._check),
                               ("collect every result", self._collect)):
                try:
                    step()
                except Exception as exc:  # noqa: BLE001 - the lab must still go away
                    self.say(f"== could not {what}: {exc}")
        finally:
            if prometheus is not None or self.recording.exporter is not None:
                self.recording.stop()
            self._write_run_json()
            self.say("== removing the lab")
            for note in lab.down(Progress()):
                self.say(f"   {note}")
        if self.options.report:
            self.results.write_report()
        self.say(f"== results: {self.run_dir}")

    def _check(self) -> None:
        self._write_run_json()  # run.json (t=0) and lab.json, as `testbed check` reads them
        self.verdicts = self.results.check(self.recording.url)

    def _collect(self) -> None:
        if self.recording.prometheus is None or not self.status.started_unix:
            return
        self.results.collect(self.recording.prometheus, self.status)

    def _write_run_json(self) -> None:
        self.results.write_run_json(self.status, self.recording.url,
                                    self.lab.state if self.lab else None)


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
