"""Starting and stopping services inside lab nodes: one process each, recorded by pid.

Each service runs in its own session (so `testbed up` can exit and the lab keeps running,
and a stop reaches the service's children through its process group), with stdout and
stderr in a log file in the node's state directory.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

from testbed.errors import ProcessError
from testbed.process import namespaces
from testbed.process.records import ProcessRecord


def start_time(pid: int) -> int | None:
    """Field 22 of /proc/PID/stat (clock ticks since boot); None if the pid is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[19])


def running(pid: int) -> bool:
    """The pid exists and is not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def is_alive(record: ProcessRecord) -> bool:
    """Alive and still the same process (not a reused pid), and not a zombie."""
    return start_time(record.pid) == record.start_time and running(record.pid)


class Supervisor:
    """Starts services; keeps their Popen handles only to reap them while we run."""

    def __init__(self) -> None:
        self._children: list[subprocess.Popen[bytes]] = []

    def start(self, *, node: str, service: str, namespace: str, argv: tuple[str, ...],
              env: Mapping[str, str], cwd: Path, log: Path) -> ProcessRecord:
        log.parent.mkdir(parents=True, exist_ok=True)
        full_env = {**os.environ, **env}
        with open(log, "ab") as out:
            try:
                proc = subprocess.Popen(  # noqa: S603 - argv comes from the user's topology
                    list(argv), cwd=cwd, env=full_env, stdin=subprocess.DEVNULL, stdout=out,
                    stderr=subprocess.STDOUT, start_new_session=True,
                    preexec_fn=lambda: namespaces.enter(namespace),
                )
            except (OSError, subprocess.SubprocessError) as exc:
                raise ProcessError(f"{node}: cannot start {service} ({' '.join(argv)}): "
                                   f"{exc}") from exc
        self._children.append(proc)
        return ProcessRecord(node, service, proc.pid, start_time(proc.pid) or 0, namespace,
                             str(log))

    def reap(self) -> None:
        """Collect exited children of this process so they do not stay zombies."""
        self._children = [p for p in self._children if p.poll() is None]


def stop(records: Iterable[ProcessRecord], grace: float = 3.0,
         supervisor: Supervisor | None = None) -> list[ProcessRecord]:
    """SIGTERM each live recorded process group, then SIGKILL what is left after `grace`."""
    live = [r for r in records if is_alive(r)]
    for record in live:
        signal_group(record, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(is_alive(r) for r in live):
        if supervisor:
            supervisor.reap()
        time.sleep(0.05)
    for record in live:
        if is_alive(record):
            signal_group(record, signal.SIGKILL)
    if supervisor:
        supervisor.reap()
    return live


def signal_group(record: ProcessRecord, sig: signal.Signals) -> None:
    try:
        os.killpg(record.pid, sig)  # the service was started as its own session leader
    except ProcessLookupError:
        return
    except PermissionError:
        os.kill(record.pid, sig)
