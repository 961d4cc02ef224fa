"""What every backend that runs labs provides. The containerlab exporter is not one: it
writes files and builds nothing, so it has its own small interface."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from testbed.lab.interrupts import no_signal_check
from testbed.lab.state import LabState
from testbed.plan.model import NetworkPlan
from testbed.progress import Progress


class Backend(Protocol):
    name: str

    def preflight(self, plan: NetworkPlan) -> None:
        """Fail before creating anything if this machine cannot build the plan."""

    def build(self, plan: NetworkPlan, state: LabState, progress: Progress,
              checkpoint: Callable[[], None] = no_signal_check) -> None:
        """Create everything, journaling each thing in `state` before creating it;
        `checkpoint` raises if the user interrupted (called at safe points)."""

    def teardown(self, state: LabState, progress: Progress) -> list[str]:
        """Remove exactly what the journal lists; return notes for the user."""
