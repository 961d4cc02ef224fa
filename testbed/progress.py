"""Progress for long work: a bar on a terminal, plain lines in logs and CI."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    def __init__(self, stream: TextIO | None = None, enabled: bool = True) -> None:
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.tty = self.stream.isatty()
        self.label = ""
        self.total = 0
        self.done = 0
        self.started = time.monotonic()
        self.stage_started = self.started
        self._last_draw = 0.0

    def stage(self, label: str, total: int = 0) -> None:
        self._finish_stage()
        self.label, self.total, self.done = label, total, 0
        self.stage_started = time.monotonic()
        self._draw(force=True)

    def advance(self, count: int = 1) -> None:
        self.done += count
        self._draw()

    def note(self, text: str) -> None:
        """A line the user should read (a warning), shown even when bars are off."""
        prefix = "\r\033[K" if self.tty else ""
        self.stream.write(f"{prefix}  note: {text}\n")
        self.stream.flush()

    def close(self) -> None:
        self._finish_stage()
        self.label = ""

    def _finish_stage(self) -> None:
        if not self.enabled or not self.label:
            return
        took = time.monotonic() - self.stage_started
        count = f" {self.done}/{self.total}" if self.total else ""
        end = "\n"
        prefix = "\r\033[K" if self.tty else ""
        self.stream.write(f"{prefix}  {self.label}{count} ({took:.1f}s){end}")
        self.stream.flush()

    def _draw(self, force: bool = False) -> None:
        if not self.enabled or not self.tty or not self.total:
            return
        now = time.monotonic()
        if not force and now - self._last_draw < 0.1 and self.done < self.total:
            return
        self._last_draw = now
        width = 30
        filled = int(width * self.done / self.total)
        bar = "#" * filled + "-" * (width - filled)
        self.stream.write(f"\r\033[K  {self.label} [{bar}] {self.done}/{self.total}")
        self.stream.flush()
