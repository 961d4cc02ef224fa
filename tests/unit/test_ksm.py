"""KSM for the launcher's peers: which memory is marked, and how ksmd is (not) touched."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from testbed.process import ksm

MAPS = """\
00400000-00425000 r--p 00000000 fe:01 123 /usr/bin/python3.11
00946000-00a85000 rw-p 00545000 fe:01 123 /usr/bin/python3.11
00a85000-00aca000 rw-p 00000000 00:00 0
13d96000-1435d000 rw-p 00000000 00:00 0                          [heap]
7f86a9b00000-7f86a9e00000 rw-p 00000000 00:00 0
7f86ab1be000-7f86ab2be000 rw-s 00000000 00:05 9 /dev/shm/x
7f86abca0000-7f86abca2000 rw-p 00037000 fe:01 77 /usr/lib/x86_64-linux-gnu/ld-linux.so.2
7ffd0729d000-7ffd072be000 rw-p 00000000 00:00 0                  [stack]
7ffd073c6000-7ffd073ca000 r--p 00000000 00:00 0                  [vvar]
ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0          [vsyscall]
"""


def test_only_private_writable_mappings_are_marked() -> None:
    ranges = ksm.mergeable_ranges(MAPS)
    assert (0x946000, 0xA85000) in ranges  # the interpreter's data: static objects
    assert (0x13D96000, 0x1435D000) in ranges  # malloc's heap
    assert (0x7F86A9B00000, 0x7F86A9E00000) in ranges  # pymalloc arenas
    assert (0x7FFD0729D000, 0x7FFD072BE000) in ranges
    assert all(start != 0x7F86AB1BE000 for start, _ in ranges)  # shared: never
    assert all(start != 0x400000 for start, _ in ranges)  # read-only code: nothing to merge
    assert len(ranges) == 6


def test_marking_a_process_is_harmless_and_inherited_by_its_forks() -> None:
    # in a child interpreter, so that this test process stays as it was
    code = ("import os; from testbed.process import ksm; n = ksm.mark_mergeable(); "
            "pid = os.fork(); os._exit(0) if pid == 0 else None; "
            "print(n, os.waitpid(pid, 0)[1])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).resolve().parents[2]).stdout.split()
    marked, child_status = int(out[0]), int(out[1])
    assert marked >= 0 and child_status == 0  # 0 bytes on a kernel without KSM


def _fake_ksm(tmp_path: Path, run: str, scan: str = "100") -> Path:
    root = tmp_path / "ksm"
    root.mkdir()
    (root / "run").write_text(run + "\n")
    (root / "pages_to_scan").write_text(scan + "\n")
    return root


def _settings(root: Path) -> tuple[str, str]:
    return (root / "run").read_text().strip(), (root / "pages_to_scan").read_text().strip()


@pytest.fixture
def other() -> Iterator[int]:
    """A live process other than this one: another lab's launcher."""
    proc = subprocess.Popen(["sleep", "60"])
    yield proc.pid
    proc.kill()
    proc.wait()


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid  # reaped: gone (pids are not reused this soon)


def test_ksmd_off_is_started_at_a_rate_for_a_thousand_peers(tmp_path: Path) -> None:
    root = _fake_ksm(tmp_path, "0")
    assert "started" in ksm.start_ksmd(root, tmp_path / "state", pages_to_scan=4321)
    assert _settings(root) == ("1", "4321")


@pytest.mark.parametrize("run", ["1", "2"])
def test_a_running_or_unmerging_ksmd_is_left_as_the_host_set_it(tmp_path: Path,
                                                                 run: str) -> None:
    root, state = _fake_ksm(tmp_path, run, "250"), tmp_path / "state"
    line = ksm.start_ksmd(root, state)
    assert "left" in line
    assert _settings(root) == (run, "250")
    assert "nothing to undo" in ksm.stop_ksmd(root, state)  # and never stopped
    assert _settings(root) == (run, "250")


def test_no_ksm_in_the_kernel_is_said_not_raised(tmp_path: Path) -> None:
    assert "not in this kernel" in ksm.start_ksmd(tmp_path / "absent", tmp_path / "state")
    assert "nothing to undo" in ksm.stop_ksmd(tmp_path / "absent", tmp_path / "state")


def test_the_launcher_that_started_ksmd_restores_the_host_settings(tmp_path: Path) -> None:
    root, state = _fake_ksm(tmp_path, "0", "100"), tmp_path / "state"
    ksm.start_ksmd(root, state, pages_to_scan=5000)
    assert _settings(root) == ("1", "5000")
    assert (state / ksm.SAVED).read_text().split() == ["0", "100"]
    assert (state / str(os.getpid())).is_file()
    assert "restored" in ksm.stop_ksmd(root, state)
    assert _settings(root) == ("0", "100")
    assert not (state / ksm.SAVED).exists() and not (state / str(os.getpid())).exists()
    assert "nothing to undo" in ksm.stop_ksmd(root, state)  # twice is harmless
    assert _settings(root) == ("0", "100")


def test_ksmd_stays_on_until_the_last_lab_relying_on_it_leaves(tmp_path: Path,
                                                               other: int) -> None:
    root, state = _fake_ksm(tmp_path, "0", "100"), tmp_path / "state"
    ksm.start_ksmd(root, state, pages_to_scan=5000)  # this lab started it
    assert "another lab" in ksm.start_ksmd(root, state, pid=other)  # the second one joins
    assert _settings(root) == ("1", "5000")
    assert "left running" in ksm.stop_ksmd(root, state)  # the first lab goes down first
    assert _settings(root) == ("1", "5000")
    assert "restored" in ksm.stop_ksmd(root, state, pid=other)
    assert _settings(root) == ("0", "100")


def test_a_launcher_killed_without_cleaning_up_does_not_keep_ksmd_on(tmp_path: Path) -> None:
    root, state = _fake_ksm(tmp_path, "0", "100"), tmp_path / "state"
    gone = _dead_pid()
    ksm.start_ksmd(root, state, pages_to_scan=5000)
    (state / str(gone)).write_text("12345\n")  # a SIGKILLed launcher's file
    assert "restored" in ksm.stop_ksmd(root, state)
    assert _settings(root) == ("0", "100")
    assert not (state / str(gone)).exists()


def test_a_reused_pid_is_not_taken_for_the_launcher(tmp_path: Path, other: int) -> None:
    root, state = _fake_ksm(tmp_path, "0", "100"), tmp_path / "state"
    ksm.start_ksmd(root, state, pages_to_scan=5000)
    (state / str(other)).write_text("1\n")  # a live pid, but not the process recorded
    assert "restored" in ksm.stop_ksmd(root, state)
    assert _settings(root) == ("0", "100")


def test_the_next_launcher_inherits_the_duty_of_a_killed_one(tmp_path: Path,
                                                             other: int) -> None:
    root, state = _fake_ksm(tmp_path, "0", "100"), tmp_path / "state"
    ksm.start_ksmd(root, state, pages_to_scan=5000, pid=_dead_pid())  # then SIGKILLed
    assert _settings(root) == ("1", "5000")
    line = ksm.start_ksmd(root, state, pid=other)  # a later lab: ksmd runs, but is ours
    assert "started by the testbed" in line and "0 other" in line
    assert "restored" in ksm.stop_ksmd(root, state, pid=other)
    assert _settings(root) == ("0", "100")


def test_a_host_that_changes_ksmd_meanwhile_keeps_its_change(tmp_path: Path) -> None:
    root, state = _fake_ksm(tmp_path, "0", "100"), tmp_path / "state"
    ksm.start_ksmd(root, state, pages_to_scan=5000)
    (root / "run").write_text("2\n")  # the admin unmerges everything
    ksm.stop_ksmd(root, state)
    assert _settings(root) == ("2", "5000")
    assert not (state / ksm.SAVED).exists()


def test_a_ksmd_that_cannot_be_started_leaves_nothing_behind(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root, state = _fake_ksm(tmp_path, "0", "100"), tmp_path / "state"
    write = Path.write_text

    def refuse_run(self: Path, text: str, *args: object, **kwargs: object) -> int:
        if self == root / "run":  # as writing to sysfs without root would
            raise PermissionError(1, "Operation not permitted")
        return write(self, text)

    monkeypatch.setattr(Path, "write_text", refuse_run)
    assert "cannot start" in ksm.start_ksmd(root, state, pages_to_scan=5000)
    assert _settings(root) == ("0", "100")  # pages_to_scan, already written, put back
    assert not (state / ksm.SAVED).exists() and not (state / str(os.getpid())).exists()


LAUNCHER = """
import os, signal, sys, time
from pathlib import Path
from testbed.process import ksm, launcher
ksm.KSM_DIR, ksm.STATE_DIR = Path(sys.argv[1]), Path(sys.argv[2])
launcher._use_ksm()
print("ready", flush=True)
time.sleep(60)
"""


def test_a_launcher_stopped_by_sigterm_restores_ksmd(tmp_path: Path) -> None:
    # the real signal path of testbed/process/launcher.py, on a fake ksm dir
    root, state = _fake_ksm(tmp_path, "0", "100"), tmp_path / "state"
    proc = subprocess.Popen([sys.executable, "-c", LAUNCHER, str(root), str(state)],
                            stdout=subprocess.PIPE, text=True,
                            cwd=Path(__file__).resolve().parents[2])
    assert proc.stdout is not None
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if line.strip() == "ready":
            break
    assert _settings(root) == ("1", str(ksm.PAGES_TO_SCAN)), lines
    proc.terminate()  # what `testbed down` does to the launcher's process group
    out, _ = proc.communicate(timeout=10)
    assert proc.returncode == 128 + 15
    assert "restored" in out
    assert _settings(root) == ("0", "100")
    assert sorted(p.name for p in state.iterdir()) == ["lock"]


def test_the_off_switch_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ksm.OFF_ENV, raising=False)
    assert not ksm.disabled()
    monkeypatch.setenv(ksm.OFF_ENV, "off")
    assert ksm.disabled()


def test_the_scan_rate_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ksm.PAGES_ENV, raising=False)
    assert ksm.pages_to_scan() == (ksm.PAGES_TO_SCAN, None)
    monkeypatch.setenv(ksm.PAGES_ENV, "500")
    assert ksm.pages_to_scan() == (500, None)
    for bad in ("0", "lots", "-5", "1000000"):
        monkeypatch.setenv(ksm.PAGES_ENV, bad)
        pages, note = ksm.pages_to_scan()
        assert pages == ksm.PAGES_TO_SCAN
        assert note is not None and ksm.PAGES_ENV in note and repr(bad) in note
