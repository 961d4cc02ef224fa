"""Bounded logs for every process of a lab: one small guard process per lab.

Every service the testbed starts (peers, user commands, proxies, the launcher,
Prometheus) writes its stdout and stderr to a log file opened for appending, and is
journaled with that file; a daemon that also writes a log file of its own (Open
vSwitch's --log-file, opened for appending too) has it journaled as `{"op": "log",
"path": ...}` (journal_log()). The guard re-reads the journal when it changes and, every
second, rotates any of those logs that grew past the cap: the content moves to
`NAME.log.1` (replacing the previous one) and the log is truncated to zero, where the
service (O_APPEND) simply carries on writing. So a log holds at most about twice the cap
(plus what a service writes within one second), whatever a node does.

A separate process because the lab outlives `testbed up`; journaled like any service,
so `testbed down` stops it. Stdlib only: it costs a few MB, once per lab.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from testbed.backends.base import StateStore
from testbed.process.records import ProcessRecord
from testbed.process.supervisor import start_time

CAP_ENV = "TESTBED_LOG_MAX_BYTES"
DEFAULT_CAP = 20 * 2**20
INTERVAL = 1.0


def cap_bytes(environ: dict[str, str] | None = None) -> int:
    """The per-log cap: $TESTBED_LOG_MAX_BYTES, else 20 MiB."""
    text = (environ if environ is not None else dict(os.environ)).get(CAP_ENV, "").strip()
    return int(text) if text.isdigit() and int(text) > 0 else DEFAULT_CAP


def rotate_if_over(path: Path, cap: int) -> bool:
    """Move a log past `cap` bytes to NAME.1 and truncate it in place (its writer keeps
    its descriptor and appends from zero). True if it was rotated."""
    try:
        if path.stat().st_size <= cap:
            return False
        rotated = path.with_name(path.name + ".1")
        with open(path, "rb") as source, open(rotated, "wb") as target:
            shutil.copyfileobj(source, target)
        os.truncate(path, 0)
    except OSError:
        return False
    return True


def journal_log(state: StateStore, path: Path) -> None:
    """Put a log file a service writes by itself (not its stdout/stderr) under the guard."""
    state.record({"op": "log", "path": str(path)})


def journaled_logs(journal: Path) -> set[Path]:
    """Every service's stdout/stderr log, and the log files journaled by journal_log()."""
    logs: set[Path] = set()
    try:
        lines = journal.read_text().splitlines()
    except OSError:
        return logs
    for line in lines:
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if entry.get("op") == "process" and entry.get("log"):
            logs.add(Path(entry["log"]))
        elif entry.get("op") == "log" and entry.get("path"):
            logs.add(Path(entry["path"]))
    return logs


def guard(state_dir: Path, cap: int, interval: float = INTERVAL) -> None:
    """Until the lab's state directory goes away (or SIGTERM at `down`)."""
    journal = state_dir / "journal.jsonl"
    seen: tuple[int, int] = (-1, -1)
    logs: set[Path] = set()
    while state_dir.is_dir():
        try:
            # its size too: two writes within one tick of the file clock leave the mtime
            # as it was, and the journal only ever grows
            stat = journal.stat()
            changed = (stat.st_mtime_ns, stat.st_size)
        except OSError:
            changed = seen
        if changed != seen:
            seen, logs = changed, journaled_logs(journal)
        for log in logs:
            if rotate_if_over(log, cap):
                print(f"rotated {log} (over {cap} bytes)", flush=True)
        time.sleep(interval)


def start_log_guard(state: StateStore) -> ProcessRecord:
    """Start the lab's guard (its own session: it outlives the command) and journal it."""
    log = state.dir / "logguard.log"
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "testbed.process.logguard", "--state-dir",
             str(state.dir), "--max-bytes", str(cap_bytes())],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True, cwd=state.dir)
    record = ProcessRecord("", "logguard", proc.pid, start_time(proc.pid) or 0, "",
                           str(log))
    state.record({"op": "process", **record.__dict__})
    return record


def main() -> None:
    parser = argparse.ArgumentParser(description="caps the logs of a lab's services")
    parser.add_argument("--state-dir", required=True, type=Path)
    parser.add_argument("--max-bytes", type=int, default=DEFAULT_CAP)
    args = parser.parse_args()
    guard(args.state_dir, args.max_bytes)


if __name__ == "__main__":
    main()
