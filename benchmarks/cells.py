"""One table cell for repeated runs: the value of a single run, median [interval] of
numbers over several (testbed/sweep/stats.py), or the count of each value otherwise."""

from __future__ import annotations

from testbed.sweep.stats import median_interval


def cell(runs: list[dict[str, object]], key: str) -> str:
    values = [run.get(key) for run in runs]
    numbers = [float(v) for v in values if isinstance(v, (int, float))]
    if len(runs) == 1:
        v = values[0]
        return f"{v:.3g}" if isinstance(v, float) else str(v)
    if numbers and len(numbers) == sum(v is not None for v in values):
        found = median_interval(numbers)
        assert found is not None
        return (f"{found.median:.3g} [{found.low:.3g}, {found.high:.3g}]"
                + (f" n={found.n}" if found.n < len(runs) else ""))
    counts: dict[str, int] = {}
    for v in values:
        counts[str(v)] = counts.get(str(v), 0) + 1
    return " ".join(f"{k} {n}/{len(runs)}" for k, n in counts.items())
