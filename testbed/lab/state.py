"""A lab's state directory and its journal of everything created.

The journal is append-only JSON lines, flushed and fsynced before the thing it names is
created. So `testbed down` can remove exactly what exists, even after `up` was killed
with SIGKILL half-way through.

Layout of <state-root>/<lab>/:
  journal.jsonl   what was created (namespaces, processes, directories), in order
  lab.json        the planned lab (nodes, namespaces, addresses) for inspect/exec
  topology.yaml   a copy of the topology file the lab was built from
  nodes/<node>/   each node's state directory (files, service logs)
  .lock           taken while up/down run
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from testbed.errors import LabError
from testbed.process.records import ProcessRecord

DEFAULT_STATE_ROOT = Path("/run/testbed")


def state_root(explicit: str | Path | None = None) -> Path:
    """--state-dir, else $TESTBED_STATE_DIR, else /run/testbed (gone at reboot, like netns)."""
    if explicit:
        return Path(explicit)
    env = os.environ.get("TESTBED_STATE_DIR")
    return Path(env) if env else DEFAULT_STATE_ROOT


@dataclass
class Journal:
    namespaces: list[str] = field(default_factory=list)
    processes: list[ProcessRecord] = field(default_factory=list)
    directories: list[str] = field(default_factory=list)
    status: str = "empty"


class LabState:
    def __init__(self, root: Path, lab: str) -> None:
        self.root = root
        self.lab = lab
        self.dir = root / lab
        self.journal_path = self.dir / "journal.jsonl"
        self.summary_path = self.dir / "lab.json"

    # --- lifecycle -----------------------------------------------------------------
    def exists(self) -> bool:
        return self.journal_path.exists()

    def ensure_absent(self) -> None:
        if self.exists():
            raise LabError(f"lab {self.lab!r} is already up (state in {self.dir}); "
                           f"run `testbed down {self.lab}` first")

    def create(self) -> None:
        self.ensure_absent()
        self.dir.mkdir(parents=True, exist_ok=True)
        self.journal_path.touch()
        self.record({"op": "dir", "path": str(self.dir)})

    @contextmanager
    def locked(self) -> Iterator[None]:
        self.dir.mkdir(parents=True, exist_ok=True)
        with open(self.dir / ".lock", "w") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise LabError(f"lab {self.lab!r} is busy: another testbed command is "
                               "bringing it up or down") from None
            yield

    def node_dir(self, node: str) -> Path:
        return self.dir / "nodes" / node

    # --- nodes rebooting ------------------------------------------------------------
    # A node being rebooted has a marker file from the moment its processes start dying
    # until its services run again, whichever command reboots it (a scenario step, or
    # `testbed reboot` from a playbook): the run's crash watcher reads it, so a reboot is
    # never mistaken for a crash.
    def mark_down(self, node: str) -> None:
        (self.dir / "down").mkdir(exist_ok=True)
        (self.dir / "down" / node).touch()

    def clear_down(self, node: str) -> None:
        (self.dir / "down" / node).unlink(missing_ok=True)

    def is_down(self, node: str) -> bool:
        return (self.dir / "down" / node).exists()

    def down_nodes(self) -> set[str]:
        try:
            return {entry.name for entry in (self.dir / "down").iterdir()}
        except FileNotFoundError:
            return set()

    # --- journal -------------------------------------------------------------------
    def record(self, *entries: dict[str, Any]) -> None:
        with open(self.journal_path, "a", encoding="utf-8") as out:
            for entry in entries:
                out.write(json.dumps(entry, sort_keys=True) + "\n")
            out.flush()
            os.fsync(out.fileno())

    def read(self) -> Journal:
        journal = Journal()
        if not self.journal_path.exists():
            return journal
        for number, line in enumerate(self.journal_path.read_text().splitlines(), 1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                # a torn last line after SIGKILL: everything before it still counts
                if number == len(self.journal_path.read_text().splitlines()):
                    break
                raise LabError(f"{self.journal_path}:{number}: unreadable journal entry"
                               ) from None
            op = entry.get("op")
            if op == "netns":
                journal.namespaces.append(entry["name"])
            elif op == "process":
                journal.processes.append(ProcessRecord(
                    entry["node"], entry["service"], entry["pid"], entry["start_time"],
                    entry["namespace"], entry["log"]))
            elif op == "dir":
                journal.directories.append(entry["path"])
            elif op == "status":
                journal.status = entry["value"]
        return journal

    def write_summary(self, summary: dict[str, Any]) -> None:
        tmp = self.summary_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(summary, indent=1, sort_keys=True))
        tmp.replace(self.summary_path)

    def summary(self) -> dict[str, Any]:
        try:
            data: dict[str, Any] = json.loads(self.summary_path.read_text())
            return data
        except FileNotFoundError:
            raise LabError(f"lab {self.lab!r} has no summary yet (still coming up, or it "
                           "failed); see `testbed down`") from None

    def remove(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


def list_labs(root: Path) -> list[str]:
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / "journal.jsonl").exists())


def find_lab(root: Path, name: str | None, how: str = "Lab.attach(NAME)") -> LabState:
    """The named lab, or the only lab when no name is given; `how` tells the user where
    to give a name (the verbs differ: --lab NAME, a LAB argument)."""
    labs = list_labs(root)
    if name:
        if name not in labs:
            raise LabError(f"no lab named {name!r} under {root}; labs: "
                           f"{', '.join(labs) or 'none'}")
        return LabState(root, name)
    if len(labs) == 1:
        return LabState(root, labs[0])
    if not labs:
        raise LabError(f"no lab is up (state directory {root})")
    raise LabError(f"several labs are up ({', '.join(labs)}); name one: {how}")
