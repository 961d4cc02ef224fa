"""tcpdump inside a node's namespace, and the captures index of a run.

The argv is built by a pure function (unit-testable). The process is started like every
kernel tool here: `setpriv --pdeathsig KILL` first, so it dies with the testbed command
that started it. Caps:
  max_packets / max_megabytes -> `-c N` (size: N = bytes / (snaplen + 16), the largest a
      pcap record can be, so the file can never exceed the cap);
  max_seconds -> coreutils `timeout --signal=INT` around tcpdump: a clean SIGINT exit
      with statistics even if no packet arrives (tcpdump's own -G only acts on a packet,
      and counts one packet it never writes).
--immediate-mode: without it libpcap hands packets over in blocks (TPACKET_V3, up to a
second late), and a SIGINT loses the block still being filled: the end of the traffic.
Stopping first lets tcpdump drain what the kernel already queued for it (SIGINT makes
libpcap drop the unread rest of its ring: the reply of a ping that has just returned can
still be there on a loaded machine), waiting until the pcap (written per packet, -U) has
not grown for QUIET_SECONDS, at most DRAIN_SECONDS. Then SIGINT by pid; tcpdump
flushes, and prints "N packets captured ... N packets dropped by kernel" on stderr (kept
in a log file next to the pcap, parsed into the index entry).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from testbed.capture.options import CaptureOptions
from testbed.errors import CaptureError
from testbed.process.commands import DIE_WITH_PARENT, require_tools
from testbed.topology.model import doc

RECORD_HEADER = 16  # bytes before every packet in a pcap
TIMED_OUT = 124  # coreutils timeout's exit status when the time cap ended the capture
QUIET_SECONDS = 0.15  # the pcap unchanged this long: tcpdump has read what was queued
DRAIN_SECONDS = 1.0  # never wait longer than this before SIGINT (steady traffic)


@dataclass
class CaptureSpec(CaptureOptions):
    """A capture as declared (topology, scenario or `testbed capture`): where, plus the
    shared options (filter, snaplen, caps, name)."""

    node: str = field(default="", metadata={"doc": "node to capture on"})
    interface: str | None = doc("interface inside the node; default its uplink (or first)")


def packet_limit(spec: CaptureSpec) -> int | None:
    """The -c count implementing max_packets and max_megabytes (whichever is smaller)."""
    limits = []
    if spec.max_packets:
        limits.append(spec.max_packets)
    if spec.max_megabytes:
        limits.append(max(1, int(spec.max_megabytes * 2**20 - 24)
                          // (spec.snaplen + RECORD_HEADER)))
    return min(limits) if limits else None


def tcpdump_argv(spec: CaptureSpec, namespace: str, interface: str, output: Path
                 ) -> list[str]:
    argv = [*DIE_WITH_PARENT, "ip", "netns", "exec", namespace]
    if spec.max_seconds:
        # timeout forwards our SIGINT to tcpdump; setpriv again: tcpdump is its child
        argv += ["timeout", "--signal=INT", f"{spec.max_seconds:g}", *DIE_WITH_PARENT]
    argv += ["tcpdump", "-i", interface, "-n", "-U", "--immediate-mode", "-Z", "root",
             "-s", str(spec.snaplen), "-w", str(output)]
    count = packet_limit(spec)
    if count:
        argv += ["-c", str(count)]
    if spec.filter:
        argv.append(spec.filter)
    return argv


def default_interface(node: dict[str, Any]) -> str | None:
    """The node's uplink interface (toward its `uplink:` node), else its first one."""
    interfaces = node.get("interfaces") or []
    for interface in interfaces:
        if node.get("uplink") and interface.get("peer") == node["uplink"]:
            return str(interface["name"])
    return str(interfaces[0]["name"]) if interfaces else None


def parse_stats(text: str) -> tuple[int | None, int | None]:
    """(packets captured, packets dropped) from tcpdump's closing lines on stderr."""
    captured = re.search(r"^(\d+) packets? captured", text, re.M)
    dropped = [int(n) for n in re.findall(r"^(\d+) packets? dropped by (?:kernel|interface)",
                                          text, re.M)]
    return (int(captured.group(1)) if captured else None,
            sum(dropped) if dropped else None)


@dataclass
class Capture:
    """A running tcpdump. stop() returns its captures/index.json entry."""

    spec: CaptureSpec
    name: str
    namespace: str
    interface: str
    path: Path
    log: Path
    proc: subprocess.Popen[bytes]
    started_unix: float
    entry: dict[str, Any] = field(default_factory=dict)

    def running(self) -> bool:
        return self.proc.poll() is None

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for a cap to end it; True if it has ended."""
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return False
        return True

    def _drain(self) -> None:
        """Wait until the pcap stops growing (tcpdump has read what was queued)."""
        deadline = time.monotonic() + DRAIN_SECONDS
        size, quiet_since = -1, time.monotonic()
        while time.monotonic() < deadline and self.proc.poll() is None:
            now_size = self.path.stat().st_size if self.path.exists() else 0
            if now_size != size:
                size, quiet_since = now_size, time.monotonic()
            elif time.monotonic() - quiet_since >= QUIET_SECONDS:
                return
            time.sleep(0.02)

    def stop(self, timeout: float = 10.0, relative_to: Path | None = None) -> dict[str, Any]:
        """SIGINT (tcpdump flushes and reports), then the index entry; idempotent.

        tcpdump may have gone already (a terminal's Ctrl-C reaches its whole process
        group; a cap ended it): that is not an error, its pcap and log are what count.
        A problem (no clean exit) still gives the entry, with the problem in it, and
        raises only after the entry is kept, so the index never loses a capture."""
        if self.entry:
            return self.entry
        problem = ""
        if self.proc.poll() is None:
            self._drain()
            with contextlib.suppress(ProcessLookupError):  # exited meanwhile
                if self.proc.poll() is None:
                    os.kill(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                problem = (f"tcpdump on {self.spec.node}:{self.interface} did not stop on "
                           f"SIGINT within {timeout:g}s; killed it (the pcap {self.path} may "
                           "be cut short)")
        stopped = time.time()
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        # 0: clean; 124: timeout's cap; -SIGINT: interrupted before tcpdump's handler
        if not problem and self.proc.returncode not in (0, TIMED_OUT, -signal.SIGINT):
            problem = (f"tcpdump on {self.spec.node}:{self.interface} failed (exit "
                       f"{self.proc.returncode}): {text.strip()}")
        self.entry = {**self.skeleton(relative_to), "stopped_unix": stopped,
                      **_stats(text)}
        if problem:
            self.entry["problem"] = problem
            raise CaptureError(problem)
        return self.entry

    def skeleton(self, relative_to: Path | None = None) -> dict[str, Any]:
        """The index entry as known at start (written at once, so it survives a kill)."""
        where = self.path
        if relative_to is not None and self.path.is_relative_to(relative_to):
            where = self.path.relative_to(relative_to)
        return {"name": self.name, "node": self.spec.node, "interface": self.interface,
                "filter": self.spec.filter, "snaplen": self.spec.snaplen,
                "file": str(where), "packets": None, "dropped": None,
                "started_unix": self.started_unix, "stopped_unix": None}


def _stats(log_text: str) -> dict[str, int | None]:
    packets, dropped = parse_stats(log_text)
    return {"packets": packets, "dropped": dropped}


def start_capture(spec: CaptureSpec, namespace: str, interface: str, output: Path,
                  ready_timeout: float = 5.0) -> Capture:
    """Start tcpdump and wait until it listens (so traffic sent next is captured)."""
    require_tools(DIE_WITH_PARENT[0], "ip", "tcpdump", *(["timeout"] if spec.max_seconds
                                                          else []))
    output.parent.mkdir(parents=True, exist_ok=True)
    log = output.with_name(output.name + ".log")
    name = spec.name or f"{spec.node}-{interface}"
    with open(log, "wb") as err:
        # its own session: a terminal's Ctrl-C is for the testbed, which stops the
        # capture itself after the traffic in flight has been drained
        proc = subprocess.Popen(tcpdump_argv(spec, namespace, interface, output),
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=err, start_new_session=True)
    capture = Capture(spec, name, namespace, interface, output, log, proc, time.time())
    deadline = time.monotonic() + ready_timeout
    try:
        while time.monotonic() < deadline:
            text = log.read_text(errors="replace")
            if "listening on" in text:
                capture.started_unix = time.time()
                return capture
            if proc.poll() is not None:
                raise CaptureError(f"tcpdump on {spec.node}:{interface} (namespace "
                                   f"{namespace}) exited at once (exit {proc.returncode}): "
                                   f"{text.strip()}")
            time.sleep(0.02)
    except KeyboardInterrupt:  # Ctrl-C/SIGTERM while it starts: nobody else knows it
        proc.kill()
        proc.wait()
        raise
    with contextlib.suppress(CaptureError):  # the message below says more
        capture.stop()
    raise CaptureError(f"tcpdump on {spec.node}:{interface} did not start listening within "
                       f"{ready_timeout:g}s: {log.read_text(errors='replace').strip()}")


def read_index(path: Path) -> list[dict[str, Any]]:
    """The entries of an index file (a run's captures/index.json); [] if there is none."""
    if not path.exists():
        return []
    try:
        entries = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise CaptureError(f"{path} is not valid JSON ({exc.msg}, line {exc.lineno})"
                           ) from None
    if not isinstance(entries, list):
        raise CaptureError(f"{path} must hold a JSON list of captures")
    return entries


def index_from_disk(directory: Path, run_dir: Path | None = None) -> list[dict[str, Any]]:
    """A captures directory's index as its files show it: the entries of its index.json
    (written when each capture started), every pcap the index does not list (named after
    its file), and what an interrupted capture never reported (packets and drops from its
    tcpdump log, the stop time from the pcap's last write)."""
    entries = {e["name"]: dict(e) for e in read_index(directory / "index.json")}
    listed = {e.get("file") for e in entries.values()}
    for pcap in sorted(directory.glob("*.pcap")):
        where = pcap.relative_to(run_dir) if run_dir and pcap.is_relative_to(run_dir) \
            else pcap
        if str(where) not in listed and pcap.stem not in entries:
            entries[pcap.stem] = {"name": pcap.stem, "node": "", "interface": "",
                                  "filter": "", "file": str(where), "packets": None,
                                  "dropped": None, "started_unix": None,
                                  "stopped_unix": None}
    for entry in entries.values():
        file = Path(entry["file"])
        pcap = file if file.is_absolute() else (run_dir or directory.parent) / file
        if entry.get("packets") is None:
            log = pcap.with_name(pcap.name + ".log")
            if log.exists():
                entry.update(_stats(log.read_text(errors="replace")))
        if entry.get("stopped_unix") is None and pcap.exists():
            entry["stopped_unix"] = pcap.stat().st_mtime
    return list(entries.values())


def update_index(path: Path, *entries: dict[str, Any]) -> Path:
    """Add or replace (by name) entries of an index file, written atomically. `file` in an
    entry is relative to the run directory (the index's grandparent) or absolute."""
    index = {e["name"]: e for e in read_index(path)}
    for entry in entries:
        index[entry["name"]] = entry
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(list(index.values()), indent=1))
    tmp.replace(path)
    return path
