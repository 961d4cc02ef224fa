"""Group statistics of repeated runs: the median with a distribution-free interval, and
whether two groups differ by more than their intervals.

The interval is the order-statistic interval for the median: [x(k), x(n+1-k)] covers the
true median with probability 1 - 2 P(Binomial(n, 1/2) <= k - 1), no assumption about the
distribution (outcomes of a metastable system are far from normal). The largest k with
coverage >= 95 % is used; below 6 runs no k reaches 95 %, so the interval is [min, max]
and its actual coverage is stated (3 runs: 75 %). Pure.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

LEVEL = 0.95


@dataclass(frozen=True)
class Interval:
    median: float
    low: float
    high: float
    n: int
    coverage: float  # probability that [low, high] holds the true median

    def as_dict(self) -> dict[str, Any]:
        return {k: round(v, 6) if isinstance(v, float) else v for k, v in asdict(self).items()}

    def text(self, fmt: str = "{:.3g}") -> str:
        if self.n == 1:
            return f"{fmt.format(self.median)} (1 run)"
        return (f"{fmt.format(self.median)} [{fmt.format(self.low)}, {fmt.format(self.high)}]"
                f" ({self.n} runs, {self.coverage:.0%})")


def _coverage(n: int, k: int) -> float:
    """P(x(k) <= median <= x(n+1-k)) for n samples of a continuous distribution."""
    tail = sum(math.comb(n, i) for i in range(k)) / 2 ** n
    return 1 - 2 * tail


def median_interval(values: Sequence[float | None], level: float = LEVEL) -> Interval | None:
    """Median and interval of the values that exist (None: not measured in that run)."""
    xs = sorted(v for v in values if v is not None and math.isfinite(v))
    n = len(xs)
    if n == 0:
        return None
    k = 1
    while k + 1 <= n // 2 and _coverage(n, k + 1) >= level:
        k += 1
    coverage = _coverage(n, k) if n > 1 else 0.0
    return Interval(statistics.median(xs), xs[k - 1], xs[n - k], n, coverage)


def differs(a: Interval | None, b: Interval | None) -> bool:
    """True when the two intervals do not overlap: a difference larger than both."""
    if a is None or b is None or a.n < 2 or b.n < 2:
        return False
    return a.high < b.low or b.high < a.low


@dataclass(frozen=True)
class Effect:
    """Changing one factor from `low_level` to `high_level`, other factors pooled."""

    factor: str
    from_level: str
    to_level: str
    metric: str
    before: Interval
    after: Interval

    @property
    def change(self) -> float:
        return self.after.median - self.before.median

    @property
    def bounds(self) -> tuple[float, float]:
        """Conservative: every difference between a value of one interval and the other."""
        return self.after.low - self.before.high, self.after.high - self.before.low

    @property
    def beyond_intervals(self) -> bool:
        return differs(self.before, self.after)


def effect(factor: str, levels: tuple[str, str], metric: str,
           groups: dict[str, list[float | None]]) -> Effect | None:
    """The effect of `factor` on `metric` from the runs at each of its two levels."""
    before, after = (median_interval(groups.get(level, [])) for level in levels)
    if before is None or after is None:
        return None
    return Effect(factor, levels[0], levels[1], metric, before, after)
