"""Captures declared in files (a topology's `capture:` on a link, a scenario's
`captures:`), placed on the planned lab, and run for the length of a lab's life.

Placing is pure (plan in, problems with file:line out), so a wrong node or interface fails
before anything is built. CaptureSet owns the running tcpdumps: it records each one as
soon as it started (so an interrupt in the middle still stops those) and writes its entry
to the run's captures/index.json at once (so even a killed run has an index), stops them
all even when one fails, and then writes the index from what they reported and what is
on disk.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from testbed.capture.options import CaptureOptions
from testbed.capture.tcpdump import (
    Capture,
    CaptureSpec,
    index_from_disk,
    start_capture,
    update_index,
)
from testbed.errors import CaptureError, Problem
from testbed.plan.model import NetworkPlan, PlannedNode
from testbed.topology.model import Topology


@dataclass(frozen=True)
class Placed:
    """A declared capture on a real interface of the plan."""

    spec: CaptureSpec
    name: str
    namespace: str
    interface: str
    where: str  # file:line of the declaration, for messages


@dataclass(frozen=True)
class Declared:
    """A scenario's `captures:` item as written, with where it was written."""

    spec: CaptureSpec
    file: str
    line: int | None
    path: str


def planned_nodes(plan: NetworkPlan) -> dict[str, dict[str, Any]]:
    """The nodes of a plan in lab.json's shape (what expectation selectors read)."""
    return {name: {"kind": n.kind, "group": n.node.group, "labels": n.node.labels,
                   "namespace": n.namespace, "uplink": n.node.uplink,
                   "interfaces": [{"name": i.name, "address": i.address, "peer": i.peer}
                                  for i in n.interfaces]}
            for name, n in plan.nodes.items()}


def place(topology: Topology, plan: NetworkPlan, declared: list[Declared]
          ) -> tuple[list[Placed], list[Problem]]:
    """Topology link captures and scenario captures on the plan's interfaces."""
    placed: list[Placed] = []
    problems: list[Problem] = []
    for link in topology.links:
        if link.capture is None:
            continue
        at = f"{link.file}:{link.line}" if link.line else str(link.file)
        end, other = (link.b, link.a) if plan.nodes[link.a].namespace is None \
            else (link.a, link.b)
        node = plan.nodes[end]
        interface = next((i.name for i in node.interfaces if i.peer == other), None)
        if node.namespace is None or interface is None:
            problems.append(Problem(f"no interface of {end} toward {other} to capture on",
                                    link.file, link.line, f"{link.path}.capture"))
            continue
        spec = CaptureSpec(**_options(link.capture), node=end, interface=interface)
        placed.append(Placed(spec, spec.name or f"{end}-{interface}", node.namespace,
                             interface, at))
    for item in declared:
        one = place_one(item, plan)
        if isinstance(one, Problem):
            problems.append(one)
        else:
            placed.append(one)
    seen: dict[str, Placed] = {}
    for capture in placed:
        if capture.name in seen:
            file, _, line = capture.where.rpartition(":")
            problems.append(Problem(
                f"capture name {capture.name!r} is used twice (also at "
                f"{seen[capture.name].where}); give one a different name:",
                file or capture.where, int(line) if line.isdigit() else None))
        seen[capture.name] = capture
    return placed, problems


def _options(options: CaptureOptions) -> dict[str, Any]:
    return {f.name: getattr(options, f.name) for f in dataclasses.fields(CaptureOptions)}


def place_one(item: Declared, plan: NetworkPlan) -> Placed | Problem:
    """One capture on the plan, or the problem with it."""
    spec = item.spec
    where = f"{item.file}:{item.line}" if item.line else item.file

    def problem(message: str) -> Problem:
        return Problem(message, item.file, item.line, item.path)

    node: PlannedNode | None = plan.nodes.get(spec.node)
    if node is None:
        return problem(f"node: {spec.node!r} is not a node of the lab")
    if node.namespace is None:
        return problem(f"{spec.node} is a {node.kind}: it has no namespace to capture in; "
                       "capture on a node attached to it")
    names = [i.name for i in node.interfaces]
    interface = spec.interface or node.uplink_interface or (names[0] if names else None)
    if interface not in names:
        return problem(f"{spec.node} has no interface {interface!r} (it has: "
                       f"{', '.join(names) or 'none'})")
    assert interface is not None
    spec = dataclasses.replace(spec, interface=interface)
    return Placed(spec, spec.name or f"{spec.node}-{interface}", node.namespace, interface,
                  where)


@dataclass
class CaptureSet:
    """The running captures of one lab, written under `directory` (a run's captures/)."""

    placed: list[Placed]
    directory: Path
    running: list[Capture] = field(default_factory=list)
    entries: list[dict[str, Any]] = field(default_factory=list)

    def start(self, relative_to: Path | None = None) -> None:
        """Start every capture; each is recorded (and indexed) the moment it listens.
        Index paths are relative to `relative_to`, by default the run directory (the
        parent of `directory`)."""
        for p in self.placed:
            capture = start_capture(p.spec, p.namespace, p.interface,
                                    self.directory / f"{p.name}.pcap")
            capture.name = p.name
            self.running.append(capture)
            update_index(self.directory / "index.json",
                         capture.skeleton(relative_to or self.directory.parent))

    def stop(self, relative_to: Path | None = None) -> list[str]:
        """Stop them all (idempotent) and write index.json; returns the problems met (a
        capture that failed still leaves its entry, noting the problem, and the others')."""
        errors = []
        for capture in self.running:
            try:
                capture.stop(relative_to=relative_to)
            except CaptureError as exc:
                errors.append(str(exc))
            if capture.entry and capture.entry not in self.entries:
                self.entries.append(capture.entry)
        if self.entries:
            update_index(self.directory / "index.json", *self.entries)
        if self.directory.is_dir():
            found = index_from_disk(self.directory, relative_to)
            if found:
                update_index(self.directory / "index.json", *found)
        return errors
