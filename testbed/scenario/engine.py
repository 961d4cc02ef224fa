"""The scenario engine: plays a schedule of events against a running lab on a monotonic
clock.

Events are due at their planned time plus the time `wait_until` and `run_playbook`
steps held the timeline back. Node actions go to a thread pool at once (a restart wave of
hundreds of hosts runs concurrently; a slow host never delays the next one), so lateness
stays low; calls, which last, have a pool of their own; timeline actions run on the
engine's thread. Each executed event is logged with planned, due and actual times and
its outcome; a failing node action is logged, never fatal. A step that raises
StepFailed (a playbook task failed) is logged and stops the run.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from testbed.errors import StepFailed
from testbed.scenario.actions import ActionRegistry, Event, RunContext, default_actions

Clock = Callable[[], float]


class StepLog:
    """steps.jsonl: one line per executed event (and per crash found), thread-safe."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        path.touch()

    def write(self, entry: dict[str, Any]) -> None:
        line = json.dumps(entry, sort_keys=True) + "\n"
        with self._lock, open(self.path, "a", encoding="utf-8") as out:
            out.write(line)


class Engine:
    def __init__(self, events: list[Event], context: RunContext, log: StepLog,
                 clock: Clock = time.monotonic, workers: int = 32,
                 actions: ActionRegistry | None = None) -> None:
        self.actions = actions or default_actions()
        known = set(self.actions.node_events) | set(self.actions.timeline_events)
        unknown = sorted({e.action for e in events} - known)
        if unknown:
            raise ValueError(f"no executor for event action(s): {', '.join(unknown)}")
        self.events = sorted(events, key=lambda e: (e.time, e.step))
        self.context = context
        self.log = log
        self.clock = clock
        self.workers = workers
        self.held = 0.0  # seconds wait_until steps held the timeline back
        self.started = 0.0
        self.done = 0
        self.current_step = -1
        self._stop = threading.Event()
        self._pending: list[Future[None]] = []
        context.note = self._note
        context.cancelled = self._stop.is_set

    def elapsed(self) -> float:
        return self.clock() - self.started

    def stop(self) -> None:
        """Ask the engine to stop before its next event (Ctrl-C, SIGTERM)."""
        self._stop.set()

    def wait_stopped(self, timeout: float) -> bool:
        """Sleep up to `timeout`; True once the engine was stopped (for watchers)."""
        return self._stop.wait(timeout)

    def run(self, duration: float, started: float | None = None) -> bool:
        """Play every event, then wait until `duration` (plus held time) has passed.
        Returns False when stopped early."""
        self.started = self.clock() if started is None else started
        # calls in progress are not waited for when stopped early: removing the lab ends
        # them (their peers go away), and Ctrl-C must not wait a call's length
        lasting = ThreadPoolExecutor(max_workers=4 * self.workers,
                                     thread_name_prefix="lasting")
        try:
            with ThreadPoolExecutor(max_workers=self.workers,
                                    thread_name_prefix="step") as pool:
                try:
                    for event in self.events:
                        if not self._wait_until(event.time + self.held):
                            return False
                        self.current_step = event.step
                        self.context.exporter.event(event.action, event.step)
                        if event.action in self.actions.timeline_events:
                            self._timeline(event)
                        else:
                            runner = lasting if event.action in self.actions.lasting else pool
                            for node in event.nodes:
                                self._pending.append(runner.submit(self._node, event, node))
                        self._pending = [f for f in self._pending if not f.done()]
                    return self._wait_until(max(duration, self.events[-1].time
                                                if self.events else 0.0) + self.held)
                finally:
                    if self._stop.is_set():
                        for future in self._pending:
                            future.cancel()
        finally:
            stopped = self._stop.is_set()
            lasting.shutdown(wait=not stopped, cancel_futures=stopped)

    def _wait_until(self, due: float) -> bool:
        while True:
            left = due - self.elapsed()
            if self._stop.is_set():
                return False
            if left <= 0:
                return True
            self._stop.wait(min(left, 0.5))

    def _timeline(self, event: Event) -> None:
        due = event.time + self.held
        actual = self.elapsed()
        try:
            outcome = self.actions.timeline_events[event.action](self.context, dict(event.params))
        except StepFailed as exc:  # logged, then the run stops
            self.log.write(self._entry(event, due, actual, f"failed: {exc}"))
            raise
        except Exception as exc:  # noqa: BLE001 - logged; the run goes on
            outcome = f"error: {exc}"
        if event.action in self.actions.holding:
            self.held += max(0.0, self.elapsed() - due)
        entry = self._entry(event, due, actual, outcome)
        if event.action == "mark":
            entry["text"] = outcome
        self.log.write(entry)
        self.done += 1

    def _note(self, entry: dict[str, Any]) -> None:
        """A line of the current step's own (e.g. a playbook task's outcome on a host)."""
        self.log.write({"step": self.current_step, "actual": round(self.elapsed(), 4),
                        **entry})

    def _node(self, event: Event, node: str) -> None:
        due = event.time + self.held
        actual = self.elapsed()
        try:
            outcome = self.actions.node_events[event.action](self.context, node, dict(event.params))
        except Exception as exc:  # noqa: BLE001 - one host failing must not stop the run
            outcome = f"error: {exc}"
        entry = self._entry(event, due, actual, outcome)
        entry["node"] = node
        self.log.write(entry)
        self.done += 1

    def _entry(self, event: Event, due: float, actual: float, outcome: str) -> dict[str, Any]:
        return {"planned": round(event.time, 4), "due": round(due, 4),
                "actual": round(actual, 4), "lateness": round(actual - due, 4),
                "action": event.action, "step": event.step, "nodes": len(event.nodes),
                "outcome": outcome}
