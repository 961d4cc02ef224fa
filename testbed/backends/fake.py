"""A backend that builds nothing: for unit tests of lab lifecycle logic without root.

It journals and "creates" namespaces in memory, can be told to fail at a given step, and
records what it was asked to do, so rollback and journal handling can be tested quickly.
Never used on a path a user runs.
"""

from __future__ import annotations

from collections.abc import Callable

from testbed.errors import BackendError
from testbed.lab.interrupts import no_signal_check
from testbed.lab.state import LabState
from testbed.plan.model import NetworkPlan
from testbed.progress import Progress


class FakeBackend:
    name = "fake"

    def __init__(self, fail_after_namespaces: int | None = None) -> None:
        self.fail_after_namespaces = fail_after_namespaces
        self.existing: set[str] = set()
        self.calls: list[str] = []

    def preflight(self, plan: NetworkPlan) -> None:
        self.calls.append("preflight")
        taken = [ns for ns in plan.namespaces() if ns in self.existing]
        if taken:
            raise BackendError(f"namespace {taken[0]} already exists")

    def build(self, plan: NetworkPlan, state: LabState, progress: Progress,
              checkpoint: Callable[[], None] = no_signal_check) -> None:
        self.calls.append("build")
        for count, ns in enumerate(plan.namespaces()):
            if self.fail_after_namespaces is not None and count >= self.fail_after_namespaces:
                raise BackendError(f"injected failure after {count} namespaces")
            state.record({"op": "netns", "name": ns})
            self.existing.add(ns)

    def teardown(self, state: LabState, progress: Progress) -> list[str]:
        self.calls.append("teardown")
        journal = state.read()
        for ns in journal.namespaces:
            self.existing.discard(ns)
        state.remove()
        return [f"removed {len(journal.namespaces)} namespaces"]
