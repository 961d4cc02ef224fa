"""The whole contract between a lab and whatever builds and runs it.

Everything the Lab, its runtime and the scenario engine ask of a backend is here, so a
second backend (or the fake one of the unit tests) is written against this page alone.
This module is a leaf: it names the plan's types and the process record, and describes
the lab's state directory by what a backend needs of it, without importing the lab
package (which imports backends).

The containerlab exporter is not a backend: it writes files and builds nothing.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from testbed.plan.model import NetworkPlan, PlannedNode, Shaping, VethEnd
from testbed.process.records import ProcessRecord
from testbed.progress import Progress

Checkpoint = Callable[[], None]
"""Raises if the user interrupted; a backend calls it at safe points of a long build."""


def no_check() -> None:
    """The checkpoint of a caller that installs no signal handlers."""


@dataclass(frozen=True)
class Capabilities:
    """What this machine's kernel lets the backend do; asked before building, so a lab
    or a scenario that needs more is refused before anything exists."""

    netem: bool  # sch_netem: delay, jitter (and loss as a qdisc)


class JournalView(Protocol):
    """What a backend reads back from the journal: what it created."""

    namespaces: list[str]
    processes: list[ProcessRecord]


class StateStore(Protocol):
    """The lab's state directory, as a backend uses it: journal before creating, node
    directories for files and logs, removal once everything is gone."""

    @property
    def dir(self) -> Path: ...

    def record(self, *entries: dict[str, Any]) -> None: ...

    def node_dir(self, node: str) -> Path: ...

    def read(self) -> JournalView: ...

    def remove(self) -> None: ...


class ProcessControl(Protocol):
    """The part of a backend that starts and stops single processes."""

    def start_process(self, node: str, service: str, namespace: str, argv: Sequence[str],
                      env: Mapping[str, str], cwd: Path, log: Path) -> ProcessRecord: ...

    def stop_processes(self, records: Sequence[ProcessRecord], grace: float | None
                       ) -> None: ...


class Backend(Protocol):
    name: str

    # --- before and at bring-up -------------------------------------------------------
    def capabilities(self) -> Capabilities:
        """Probed once per backend object."""

    def preflight(self, plan: NetworkPlan, state_dir: Path | None = None) -> None:
        """Fail before creating anything if this machine cannot build the plan (with
        `state_dir`: nor hold the files its nodes will write there)."""

    def build(self, plan: NetworkPlan, state: StateStore, progress: Progress,
              checkpoint: Checkpoint = no_check) -> None:
        """Create everything, journaling each thing in `state` before creating it, and
        start the services of every node that is not held back."""

    def teardown(self, state: StateStore, progress: Progress) -> list[str]:
        """Remove exactly what the journal lists; return notes for the user."""

    # --- processes ----------------------------------------------------------------------
    def start_services(self, node: PlannedNode, plan: NetworkPlan, state: StateStore,
                       progress: Progress | None = None, checkpoint: Checkpoint = no_check
                       ) -> list[ProcessRecord]:
        """Start a node's services (journaled); files already in its state directory,
        such as a peer's host cache, are kept, as on a PC's disk."""

    def start_process(self, node: str, service: str, namespace: str, argv: Sequence[str],
                      env: Mapping[str, str], cwd: Path, log: Path) -> ProcessRecord:
        """Start one supervised process inside a namespace of the lab (the lab's own
        helpers: Prometheus, exporters); the caller journals the record."""

    def stop_processes(self, records: Sequence[ProcessRecord], grace: float | None
                       ) -> None:
        """End these processes and their groups: SIGTERM, then SIGKILL after `grace`
        seconds, or SIGKILL at once when `grace` is None. Returns once they are gone
        (at most a few seconds)."""

    # --- links and rules at run time ----------------------------------------------------
    def set_links(self, node: PlannedNode, up: bool) -> None:
        """The node's data links down or up (management stays up); when up, its routes
        are back too (the kernel drops routes through a link that went down)."""

    def set_link_end(self, end: VethEnd, up: bool) -> None:
        """One end of a link down or up (a cable pulled at one side)."""

    def shape(self, end: VethEnd, shaping: Shaping, receiver: VethEnd,
              loss: float | None) -> None:
        """Replace what `end` sends with `shaping`; `loss` extra loss of what `receiver`
        gets from it (None: none)."""

    def apply_rules(self, namespace: str, ruleset: str, context: str) -> None:
        """Load an nftables ruleset into a namespace (a partition, for instance)."""

    def remove_rules(self, namespace: str, family: str, table: str) -> None:
        """Delete a table loaded by apply_rules; no error when it is not there."""

    # --- commands -----------------------------------------------------------------------
    def run(self, namespace: str, argv: Sequence[str], timeout: float | None = 30.0,
            stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        """Run a command inside a namespace of the lab and wait for it (never raises on
        a non-zero exit: the caller reads returncode)."""

    def popen(self, namespace: str, argv: Sequence[str], **kwargs: Any
              ) -> subprocess.Popen[str]:
        """Start a command inside a namespace of the lab without waiting for it."""
