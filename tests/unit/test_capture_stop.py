"""Stopping a capture whose tcpdump already went (a terminal's Ctrl-C reaches the whole
process group), and the captures index rebuilt from what is on disk."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

from testbed.capture.resolve import load_run
from testbed.capture.tcpdump import Capture, CaptureSpec, index_from_disk, update_index


def capture_of(tmp_path: Path, argv: list[str], log_text: str = "") -> Capture:
    pcap = tmp_path / "captures" / "c1.pcap"
    pcap.parent.mkdir(parents=True, exist_ok=True)
    pcap.write_bytes(b"\xd4\xc3\xb2\xa1")
    log = pcap.with_name("c1.pcap.log")
    log.write_text(log_text)
    proc = subprocess.Popen(argv)
    return Capture(CaptureSpec(node="h1", interface="eth0"), "c1", "ns", "eth0", pcap, log,
                   proc, time.time())


def test_stop_after_tcpdump_exited_during_the_drain_does_not_raise(tmp_path: Path) -> None:
    stats = "7 packets captured\n7 packets received by filter\n1 packet dropped by kernel\n"
    capture = capture_of(tmp_path, ["sleep", "0.05"], stats)  # ends inside _drain
    entry = capture.stop(relative_to=tmp_path)
    assert (entry["packets"], entry["dropped"], entry["file"]) == (7, 1, "captures/c1.pcap")
    assert "problem" not in entry


def test_stop_accepts_a_tcpdump_killed_by_the_terminals_sigint(tmp_path: Path) -> None:
    capture = capture_of(tmp_path, ["sh", "-c", "kill -INT $$; sleep 5"])
    capture.proc.wait(5)
    assert capture.proc.returncode == -2
    assert capture.stop()["packets"] is None


def test_index_from_disk_fills_what_an_interrupted_run_never_reported(tmp_path: Path
                                                                      ) -> None:
    captures = tmp_path / "captures"
    captures.mkdir()
    (captures / "a.pcap").write_bytes(b"x")
    (captures / "a.pcap.log").write_text("3 packets captured\n0 packets dropped by kernel\n")
    (captures / "stray.pcap").write_bytes(b"x")
    update_index(captures / "index.json",
                 {"name": "a", "node": "h1", "interface": "eth0", "file": "captures/a.pcap",
                  "packets": None, "dropped": None, "started_unix": 1.0,
                  "stopped_unix": None})
    entries = {e["name"]: e for e in index_from_disk(captures, tmp_path)}
    assert entries["a"]["packets"] == 3 and entries["a"]["node"] == "h1"
    assert entries["a"]["stopped_unix"] > 1.0
    assert entries["stray"]["file"] == "captures/stray.pcap"


def test_a_run_without_index_is_read_from_its_pcaps_not_called_undeclared(tmp_path: Path
                                                                           ) -> None:
    (tmp_path / "run.json").write_text(json.dumps({"started_unix": 1.0}))
    (tmp_path / "captures").mkdir()
    (tmp_path / "captures" / "uplink.pcap").write_bytes(b"x")
    run = load_run(tmp_path)
    assert [c.name for c in run.captures] == ["uplink"]
    assert "declared" not in run.index_note
