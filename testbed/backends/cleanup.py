"""Removing a lab: exactly what its journal recorded, in a safe order, idempotently.

1. the recorded services (by pid and start time, so a reused pid is never hit), with
   their process groups;
2. any process still inside one of the lab's own namespaces (found by the namespace's
   inode, never by name): these can only have been started inside this lab;
3. the namespaces, which takes every veth, bridge, qdisc and nft rule in them along;
4. the lab's state directory.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time

from testbed.backends.base import StateStore
from testbed.process import commands, namespaces
from testbed.process.supervisor import Supervisor, running, stop
from testbed.progress import Progress


def clean(state: StateStore, progress: Progress, supervisor: Supervisor | None = None
          ) -> list[str]:
    notes: list[str] = []
    journal = state.read()
    progress.stage("stopping services", len(journal.processes))
    stopped = stop(journal.processes, supervisor=supervisor)
    progress.advance(len(journal.processes))
    if stopped:
        notes.append(f"stopped {len(stopped)} services")
    recorded = list(dict.fromkeys(journal.namespaces))
    strays = _stop_strays(recorded)
    if strays:
        notes.append(f"stopped {len(strays)} other processes running inside the lab's "
                     f"namespaces (pids {', '.join(map(str, strays[:10]))})")
    present = [ns for ns in recorded if namespaces.exists(ns)]
    progress.stage("removing namespaces", len(present))
    for start in range(0, len(present), 200):
        chunk = present[start:start + 200]
        commands.batch("ip", [f"netns del {ns}" for ns in chunk], force=True,
                       context="removing network namespaces")
        progress.advance(len(chunk))
    left = [ns for ns in present if namespaces.exists(ns)]
    if left:
        notes.append(f"could not remove namespaces: {', '.join(left)}")
    else:
        state.remove()
    progress.close()
    return notes


def _stop_strays(recorded: list[str], grace: float = 2.0) -> list[int]:
    me = os.getpid()
    strays = [pid for pid in namespaces.processes_in_any(recorded) if pid != me]
    for pid in strays:
        _kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(running(p) for p in strays):
        time.sleep(0.05)
    for pid in strays:
        if running(pid):
            _kill(pid, signal.SIGKILL)
    return strays


def _kill(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)

