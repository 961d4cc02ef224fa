"""The log guard's rotation: a log past its cap moves to NAME.1 and its writer, which
appends, carries on at the start of the emptied file."""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from pathlib import Path

from testbed.process.logguard import cap_bytes, guard, journaled_logs, rotate_if_over


def test_rotation_keeps_the_writer_appending(tmp_path: Path) -> None:
    log = tmp_path / "peer.log"
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        os.write(fd, b"x" * 1500)
        assert not rotate_if_over(log, 2000)
        os.write(fd, b"y" * 1000)
        assert rotate_if_over(log, 2000)
        os.write(fd, b"after\n")
    finally:
        os.close(fd)
    assert log.read_bytes() == b"after\n"  # no hole of zeros: O_APPEND writes at the end
    assert (tmp_path / "peer.log.1").stat().st_size == 2500


def test_logs_come_from_the_journal_and_the_cap_from_the_environment(tmp_path: Path
                                                                     ) -> None:
    journal = tmp_path / "journal.jsonl"
    journal.write_text("\n".join([
        json.dumps({"op": "netns", "name": "x"}),
        json.dumps({"op": "process", "node": "a", "log": "/s/a/peer.log"}),
        json.dumps({"op": "log", "path": "/s/ovs/ovs-vswitchd.log"}),  # a daemon's own
        '{"op": "process", "torn',
    ]))
    assert journaled_logs(journal) == {Path("/s/a/peer.log"),
                                       Path("/s/ovs/ovs-vswitchd.log")}
    assert cap_bytes({"TESTBED_LOG_MAX_BYTES": "4096"}) == 4096
    assert cap_bytes({}) == 20 * 2**20


def test_a_service_journaled_within_the_same_timestamp_tick_is_still_guarded(
        tmp_path: Path) -> None:
    """The journal's mtime may not change between two writes close together (coarse
    file timestamps): the guard still sees the second service, as the journal grew."""
    state = tmp_path / "lab"
    state.mkdir()
    journal = state / "journal.jsonl"
    first, second = state / "first.log", state / "second.log"
    journal.write_text(json.dumps({"op": "process", "log": str(first)}) + "\n")
    thread = threading.Thread(target=guard, args=(state, 100, 0.02), daemon=True)
    thread.start()
    try:
        time.sleep(0.2)  # the guard has read the journal as it was
        before = journal.stat()
        with open(journal, "a") as out:
            out.write(json.dumps({"op": "process", "log": str(second)}) + "\n")
        os.utime(journal, ns=(before.st_atime_ns, before.st_mtime_ns))  # same tick
        second.write_bytes(b"x" * 500)
        deadline = time.monotonic() + 20  # generous: a loaded machine runs the guard late
        while time.monotonic() < deadline and not (state / "second.log.1").exists():
            time.sleep(0.02)
        assert (state / "second.log.1").exists()
        assert second.stat().st_size == 0
    finally:
        shutil.rmtree(state)  # the guard stops when the lab's directory goes
        thread.join(2)
