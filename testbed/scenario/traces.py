"""Restart-time traces: a `restart_wave` can spread its restarts like a recorded event
(e.g. the reboot times a fleet's update logs show) instead of a formula.

A trace file is text: one time per line in seconds (any origin; e.g. Unix times), or CSV
whose first column is the time (a header line is allowed); blank lines and `#` comments
are skipped. Only its shape is used: the times are moved to start at 0 and, when the step
gives `window:`, stretched or squeezed onto it. Each restarting host then draws its offset
from the trace's distribution (the seed decides), so a trace of 50 reboots can drive a
wave of 500 hosts and keep its bursts and lulls.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from pathlib import Path


class TraceError(ValueError):
    """A trace that cannot be used; the message names the file and line."""


@dataclass(frozen=True)
class Trace:
    source: str
    times: tuple[float, ...]  # sorted, starting at 0

    @property
    def span(self) -> float:
        return self.times[-1]

    def offset(self, window: float | None, rng: random.Random) -> float:
        """One offset drawn from the trace (linear between its recorded times), scaled
        onto `window` when given."""
        scale = (window / self.span) if window is not None and self.span > 0 else 1.0
        return self._quantile(rng.random()) * scale

    def _quantile(self, u: float) -> float:
        if len(self.times) == 1:
            return self.times[0]
        position = u * (len(self.times) - 1)
        low = min(int(position), len(self.times) - 2)
        fraction = position - low
        return self.times[low] + fraction * (self.times[low + 1] - self.times[low])


def read_trace(path: Path) -> Trace:
    """Parse a trace file; every unusable line is reported with its number."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise TraceError(f"{path}: cannot read the trace ({exc.strerror})") from None
    times: list[float] = []
    problems: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        field = line.split("#", 1)[0].split(",", 1)[0].strip()
        if not field:
            continue
        try:
            value = float(field)
        except ValueError:
            if not times and not problems:  # a CSV header
                continue
            problems.append(f"{path}:{number}: {field!r} is not a time in seconds")
            continue
        if not math.isfinite(value):
            problems.append(f"{path}:{number}: {field!r} is not a finite time")
            continue
        times.append(value)
    if problems:
        raise TraceError("; ".join(problems[:5]) + (f" (and {len(problems) - 5} more)"
                                                    if len(problems) > 5 else ""))
    if not times:
        raise TraceError(f"{path}: the trace holds no times (one number of seconds per "
                         "line, or CSV with the time in the first column)")
    times.sort()
    start = times[0]
    return Trace(str(path), tuple(t - start for t in times))
