"""A backend that builds nothing: for unit tests of the lab and the scenario engine without
root.

It journals and "creates" namespaces in memory, can be told to fail at a given step, and
records every call it gets (`calls`, as "method node-or-device ..."; `timeline` has the
same with the monotonic time of each, for the engine's timing), so rollback, journal
handling and what a scenario step does to a lab can be tested quickly. Processes are
records with made-up pids that never run; commands (`run`) print nothing unless an
`answer` function says what they print. Never used on a path a user runs.
"""

from __future__ import annotations

import itertools
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from testbed.backends.base import Backend, Capabilities, Checkpoint, StateStore, no_check
from testbed.errors import BackendError
from testbed.plan.model import NetworkPlan, PlannedNode, Shaping, VethEnd
from testbed.process.records import ProcessRecord
from testbed.progress import Progress


class FakeBackend:
    name = "fake"

    def __init__(self, fail_after_namespaces: int | None = None, netem: bool = True,
                 services_per_node: int = 1,
                 answer: Callable[[str, Sequence[str]], str] | None = None) -> None:
        self.fail_after_namespaces = fail_after_namespaces
        self.netem = netem
        self.services_per_node = services_per_node
        self.answer = answer  # (namespace, argv) -> what the command prints
        self.existing: set[str] = set()
        self.calls: list[str] = []
        self.timeline: list[tuple[float, str]] = []
        self.commands: list[tuple[str, tuple[str, ...]]] = []
        self._pids = itertools.count(4_000_000)  # above any real pid_max default
        self._lock = threading.Lock()  # the engine acts on many nodes at once

    def _call(self, text: str) -> None:
        with self._lock:
            self.calls.append(text)
            self.timeline.append((time.monotonic(), text))

    def capabilities(self) -> Capabilities:
        return Capabilities(netem=self.netem)

    def preflight(self, plan: NetworkPlan, state_dir: Path | None = None) -> None:
        self._call("preflight")
        taken = [ns for ns in plan.namespaces() if ns in self.existing]
        if taken:
            raise BackendError(f"namespace {taken[0]} already exists")

    def build(self, plan: NetworkPlan, state: StateStore, progress: Progress,
              checkpoint: Checkpoint = no_check) -> None:
        self._call("build")
        for count, ns in enumerate(plan.namespaces()):
            if self.fail_after_namespaces is not None and count >= self.fail_after_namespaces:
                raise BackendError(f"injected failure after {count} namespaces")
            state.record({"op": "netns", "name": ns})
            self.existing.add(ns)

    def teardown(self, state: StateStore, progress: Progress) -> list[str]:
        self._call("teardown")
        journal = state.read()
        for ns in journal.namespaces:
            self.existing.discard(ns)
        state.remove()
        return [f"removed {len(journal.namespaces)} namespaces"]

    def start_services(self, node: PlannedNode, plan: NetworkPlan, state: StateStore,
                       progress: Progress | None = None, checkpoint: Checkpoint = no_check
                       ) -> list[ProcessRecord]:
        self._call(f"start_services {node.name}")
        records = [ProcessRecord(node.name, f"service{i}", next(self._pids), 0,
                                 node.namespace or "", "")
                   for i in range(self.services_per_node)]
        for record in records:
            state.record({"op": "process", **record.__dict__})
        return records

    def start_process(self, node: str, service: str, namespace: str, argv: Sequence[str],
                      env: Mapping[str, str], cwd: Path, log: Path) -> ProcessRecord:
        self._call(f"start_process {service} {namespace}")
        return ProcessRecord(node, service, next(self._pids), 0, namespace, str(log))

    def stop_processes(self, records: Sequence[ProcessRecord], grace: float | None
                       ) -> None:
        self._call(f"stop_processes {len(records)} grace={grace}")

    def set_links(self, node: PlannedNode, up: bool) -> None:
        self._call(f"set_links {node.name} {'up' if up else 'down'}")

    def set_link_end(self, end: VethEnd, up: bool) -> None:
        self._call(f"set_link_end {end.name} {'up' if up else 'down'}")

    def shape(self, end: VethEnd, shaping: Shaping, receiver: VethEnd,
              loss: float | None) -> None:
        self._call(f"shape {end.name} rate={shaping.rate} loss={loss}")

    def apply_rules(self, namespace: str, ruleset: str, context: str) -> None:
        self._call(f"apply_rules {namespace}")

    def remove_rules(self, namespace: str, family: str, table: str) -> None:
        self._call(f"remove_rules {namespace} {table}")

    def run(self, namespace: str, argv: Sequence[str], timeout: float | None = 30.0,
            stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        with self._lock:
            self.commands.append((namespace, tuple(argv)))
        printed = self.answer(namespace, argv) if self.answer else ""
        return subprocess.CompletedProcess(list(argv), 0, printed, "")

    def popen(self, namespace: str, argv: Sequence[str], **kwargs: Any
              ) -> subprocess.Popen[str]:
        raise BackendError("the fake backend runs no processes")


if TYPE_CHECKING:  # mypy proves the fake keeps up with the whole contract
    _: Backend = FakeBackend()
