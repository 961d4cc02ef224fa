"""Kernel samepage merging (KSM) for the peers forked by the launcher.

Why: on CPython 3.11 a forked peer writes to pages it shares with the launcher as soon
as it runs (the reference count of every object it touches, code warm-up counters, the
allocator's free lists), and each page it writes becomes its private copy: ~5 MB per
peer, although most of those copies are either identical to the launcher's page (a
count went up and back down) or identical to the same page in every other peer (all
peers run the same code the same way). KSM has the kernel find identical pages and
keep one write-protected copy of each; a peer that writes one again gets its own copy
back, exactly as after the fork. Nothing changes for the peers but the memory they take.

The launcher marks its private writable mappings MADV_MERGEABLE right before it forks:
the mark is a property of the mappings, so every peer forked afterwards inherits it,
and the kernel scans only that memory (what the peers share with the launcher), not
what each peer allocates for itself. Without KSM in the kernel, or without root, peers
still work and just share less. TESTBED_KSM=off in the launcher's environment turns all
of this off (nothing marked, ksmd not touched): the baseline of bench_memory.py --no-ksm.
TESTBED_KSM_PAGES=N sets the pages_to_scan the testbed starts ksmd with (default
PAGES_TO_SCAN): fewer pages, less of a core for ksmd, slower merging of new peers.

What changes on the host, and how it is undone. Merging needs ksmd running
(/sys/kernel/mm/ksm/run = 1). If it already runs, its settings are the host's: the
testbed leaves them alone and never stops it. If it is off (run = 0), the launcher
(root, like the whole lab) writes pages_to_scan = PAGES_TO_SCAN and run = 1, and first
records the previous values in STATE_DIR (/run/testbed-ksm/saved). Every launcher that
relies on a ksmd the testbed started leaves a file STATE_DIR/<its pid> (holding its
start time, so a reused pid does not count); when a launcher exits (SIGTERM from
`testbed down`, or its helper gone) it removes its file, and the last one out writes
the recorded pages_to_scan and run back and removes `saved`. Files of launchers that
are gone without cleaning up (SIGKILL) are ignored and removed; the next launcher that
relies on ksmd takes over the duty to restore it. Changes happen under a flock on
STATE_DIR/lock, so concurrent labs see one consistent state. Pages merged before ksmd
stops stay merged until their processes exit (run = 0 keeps them; only run = 2 would
unmerge them), which is harmless: the lab is going down.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

KSM_DIR = Path("/sys/kernel/mm/ksm")
STATE_DIR = Path("/run/testbed-ksm")  # tmpfs: a reboot resets both it and ksmd
MADV_MERGEABLE = 12
PAGES_TO_SCAN = 5000  # per 20 ms wake-up: a full pass over 1000 peers in well under a minute
SKIP = ("[vsyscall]", "[vvar]", "[vdso]", "[vvar_vclock]")
SAVED = "saved"  # "<run> <pages_to_scan>" as they were before the testbed started ksmd
OFF_ENV = "TESTBED_KSM"  # "off": do not mark memory, do not touch ksmd
# pages ksmd scans per wake-up when the testbed starts it: the trade between ksmd's CPU
# (it scans this many pages every 20 ms) and how soon a new peer's pages are merged
PAGES_ENV = "TESTBED_KSM_PAGES"

_libc = ctypes.CDLL(None, use_errno=True)
_libc.madvise.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
_libc.madvise.restype = ctypes.c_int


def pages_to_scan() -> tuple[int, str | None]:
    """The pages_to_scan to start ksmd with: $TESTBED_KSM_PAGES (1-100000) or the default;
    with a note when the variable was set but unusable."""
    text = os.environ.get(PAGES_ENV, "").strip()
    if not text:
        return PAGES_TO_SCAN, None
    if text.isdigit() and 1 <= int(text) <= 100_000:
        return int(text), None
    return PAGES_TO_SCAN, (f"KSM: {PAGES_ENV}={text!r} is not a whole number from 1 to "
                           f"100000; using {PAGES_TO_SCAN}")


def disabled() -> bool:
    return os.environ.get(OFF_ENV, "").strip().lower() in ("off", "0", "no", "false")


def mergeable_ranges(maps: str) -> list[tuple[int, int]]:
    """(start, end) of the private writable mappings in a /proc/PID/maps text: the
    memory a forked child shares copy-on-write with its parent."""
    ranges = []
    for line in maps.splitlines():
        fields = line.split()
        if len(fields) < 5 or fields[1] != "rw-p" or (len(fields) > 5 and fields[5] in SKIP):
            continue
        start, end = (int(x, 16) for x in fields[0].split("-"))
        ranges.append((start, end))
    return ranges


def mark_mergeable() -> int:
    """madvise(MADV_MERGEABLE) this process's private writable memory; children forked
    afterwards inherit the mark. Returns the bytes marked (0 without KSM)."""
    marked = 0
    for start, end in mergeable_ranges(Path("/proc/self/maps").read_text()):
        if _libc.madvise(start, end - start, MADV_MERGEABLE) == 0:
            marked += end - start
    return marked


def _start_time(pid: int) -> str | None:
    """Field 22 of /proc/PID/stat: with the pid, identifies one process. None if gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return None if fields[0] in ("Z", "X") else fields[19]


def _users(state_dir: Path) -> list[int]:
    """Pids of the live launchers that rely on the ksmd the testbed started; removes
    the files of those that are gone (or whose pid now belongs to another process)."""
    live = []
    for entry in state_dir.iterdir():
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        try:
            recorded = entry.read_text().strip()
        except OSError:
            continue
        if recorded and recorded == _start_time(pid):
            live.append(pid)
        else:
            with contextlib.suppress(OSError):
                entry.unlink()
    return sorted(live)


@contextlib.contextmanager
def _locked(state_dir: Path) -> Iterator[None]:
    state_dir.mkdir(mode=0o755, parents=True, exist_ok=True)
    fd = os.open(state_dir / "lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def _write(path: Path, text: str) -> None:
    """Atomically: a reader (or a crash) never sees half a file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(text)
    tmp.replace(path)


def start_ksmd(ksm_dir: Path | None = None, state_dir: Path | None = None,
               pages_to_scan: int = PAGES_TO_SCAN, pid: int | None = None) -> str:
    """Make sure ksmd merges pages; says what it found or did (for the launcher's log).
    If ksmd runs because the testbed started it (now or for another lab), records `pid`
    (default: this process) as relying on it, so that stop_ksmd() by the last such
    process restores the host's settings. Directories default to KSM_DIR, STATE_DIR."""
    ksm_dir, state_dir = ksm_dir or KSM_DIR, state_dir or STATE_DIR
    pid = os.getpid() if pid is None else pid
    run = ksm_dir / "run"
    try:
        state = run.read_text().strip()
    except OSError:
        return "KSM: not in this kernel; peers share only what they never write"
    if state not in ("0", "1"):
        return f"KSM: run is {state} (unmerging or unknown), left alone"
    try:
        with _locked(state_dir):
            state = run.read_text().strip()  # again: another launcher may have changed it
            saved = state_dir / SAVED
            ours = saved.exists()
            if state == "1" and not ours:
                scan = (ksm_dir / "pages_to_scan").read_text().strip()
                return (f"KSM: ksmd already running (pages_to_scan {scan}), started by the "
                        f"host: settings left as they are")
            if state == "1":
                others = _users(state_dir)
                _write(state_dir / str(pid), f"{_start_time(pid) or ''}\n")
                return (f"KSM: ksmd running, started by the testbed for another lab "
                        f"({len(others)} other launchers rely on it); the last one out "
                        f"restores the host's settings ({saved.read_text().strip()})")
            if state != "0":
                return f"KSM: run is {state} (unmerging or unknown), left alone"
            scan = (ksm_dir / "pages_to_scan").read_text().strip()
            if not ours:  # else: left by a launcher that was killed; its record still holds
                _write(saved, f"0 {scan}\n")
            _write(state_dir / str(pid), f"{_start_time(pid) or ''}\n")
            try:
                (ksm_dir / "pages_to_scan").write_text(str(pages_to_scan))
                run.write_text("1")
            except OSError:  # put back what was written, forget what was recorded
                with contextlib.suppress(OSError):
                    (ksm_dir / "pages_to_scan").write_text(scan)
                if not ours:
                    saved.unlink(missing_ok=True)
                (state_dir / str(pid)).unlink(missing_ok=True)
                raise
    except OSError as exc:
        return (f"KSM: cannot start ksmd ({exc.strerror or exc}); left as it was, "
                f"peers share less")
    return (f"KSM: started ksmd (pages_to_scan {pages_to_scan}; was run 0, pages_to_scan "
            f"{scan}: restored when the last lab's launcher exits)")


def _restore(ksm_dir: Path, state_dir: Path) -> str:
    """Write the settings recorded in `saved` back (under the lock) and forget them."""
    saved = state_dir / SAVED
    try:
        run, scan = saved.read_text().split()
    except (OSError, ValueError):
        return "KSM: no recorded settings to restore"
    if (ksm_dir / "run").read_text().strip() == "1":  # else: the host changed it since
        (ksm_dir / "pages_to_scan").write_text(scan)
        (ksm_dir / "run").write_text(run)
    saved.unlink()
    return f"KSM: restored the host's ksmd settings (run {run}, pages_to_scan {scan})"


def stop_ksmd(ksm_dir: Path | None = None, state_dir: Path | None = None,
              pid: int | None = None) -> str:
    """Undo start_ksmd() for `pid` (default: this process): forget it and, if it was the
    last live launcher relying on the ksmd the testbed started, restore the host's
    settings. A no-op (and cheap) for a process that never relied on it."""
    ksm_dir, state_dir = ksm_dir or KSM_DIR, state_dir or STATE_DIR
    pid = os.getpid() if pid is None else pid
    mine = state_dir / str(pid)
    if not mine.exists():
        return "KSM: nothing to undo"
    try:
        with _locked(state_dir):
            mine.unlink(missing_ok=True)
            others = _users(state_dir)
            if others:
                return (f"KSM: ksmd left running for {len(others)} other launchers "
                        f"(pids {', '.join(map(str, others[:5]))})")
            return _restore(ksm_dir, state_dir)
    except OSError as exc:
        return f"KSM: cannot restore ksmd's settings ({exc.strerror or exc})"
