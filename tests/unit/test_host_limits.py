"""A lab bigger than the kernel's shared ARP table gets a warning naming the sysctl."""

from __future__ import annotations

from pathlib import Path

from testbed.backends.host_limits import neighbour_table_note


def test_a_lab_that_fits_gets_no_note(tmp_path: Path) -> None:
    limit = tmp_path / "gc_thresh3"
    limit.write_text("1024\n")
    assert neighbour_table_note(300, limit) is None
    assert neighbour_table_note(5000, tmp_path / "missing") is None  # no such kernel knob


def test_a_lab_that_does_not_fit_is_told_what_to_raise(tmp_path: Path) -> None:
    limit = tmp_path / "gc_thresh3"
    limit.write_text("1024\n")
    note = neighbour_table_note(1000, limit)
    assert note is not None
    assert "gc_thresh3 = 1024" in note and "~3000 ARP entries" in note
    assert "sysctl -w net.ipv4.neigh.default.gc_thresh3=32768" in note
    assert "scripts/setup.sh" in note
