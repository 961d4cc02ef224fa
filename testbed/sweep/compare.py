"""`testbed compare SWEEP [SWEEP ...]`: the groups of repeated runs side by side, and
which differences are larger than their intervals (the intervals do not overlap)."""

from __future__ import annotations

import html
import itertools
import json
from pathlib import Path
from typing import Any

from testbed.errors import ResultsError
from testbed.metrics.report import page
from testbed.sweep.stats import Interval, differs


def is_group(path: Path) -> bool:
    return (path / "sweep.json").is_file()


def load_groups(paths: list[Path]) -> list[tuple[str, dict[str, Interval]]]:
    """(label, {metric: interval}) of every cell of every sweep given."""
    found = []
    for path in paths:
        try:
            data = json.loads((path / "sweep.json").read_text())
        except (OSError, ValueError) as exc:
            raise ResultsError(f"{path / 'sweep.json'}: cannot be read: {exc}") from None
        for group in data.get("groups", []):
            cell = ", ".join(f"{k}={v}" for k, v in group.get("cell", {}).items()) or "all"
            stats = {k: Interval(**v) for k, v in group.get("stats", {}).items()}
            found.append((f"{path.name}: {cell}" if len(paths) > 1 else cell, stats))
    return found


def differences(groups: list[tuple[str, dict[str, Interval]]]) -> list[dict[str, Any]]:
    """Every pair of groups and metric, with whether the difference exceeds the intervals."""
    rows = []
    for (a, sa), (b, sb) in itertools.combinations(groups, 2):
        for metric in sa.keys() & sb.keys():
            rows.append({"a": a, "b": b, "metric": metric, "a_interval": sa[metric].text(),
                         "b_interval": sb[metric].text(),
                         "beyond_intervals": differs(sa[metric], sb[metric])})
    return sorted(rows, key=lambda r: (r["metric"], r["a"], r["b"]))


def compare_groups(paths: list[Path], out: Path) -> tuple[Path, list[str]]:
    """out/compare.html and compare.json; returns the page and the lines to print."""
    groups = load_groups(paths)
    rows = differences(groups)
    out.mkdir(parents=True, exist_ok=True)
    (out / "compare.json").write_text(json.dumps(rows, indent=1))
    lines = [f"{'metric':<26} {'group A':<36} {'group B':<36} beyond intervals?"]
    for r in rows:
        lines.append(f"{r['metric']:<26} {r['a']:<36} {r['b']:<36} "
                     f"{'YES' if r['beyond_intervals'] else 'no'}: {r['a_interval']} vs "
                     f"{r['b_interval']}")
    table = ["<table><tr><th>metric</th><th>group A</th><th>group B</th><th>A</th><th>B</th>"
             "<th>larger than the intervals?</th></tr>"]
    table += [f"<tr><td>{html.escape(r['metric'])}</td><td>{html.escape(r['a'])}</td>"
              f"<td>{html.escape(r['b'])}</td><td>{html.escape(r['a_interval'])}</td>"
              f"<td>{html.escape(r['b_interval'])}</td>"
              f"<td>{'yes' if r['beyond_intervals'] else 'no'}</td></tr>" for r in rows]
    body = ["<h1>Groups of repeated runs compared</h1>",
            "<p>Median [interval] (runs, coverage of the interval); a difference counts when "
            "the two intervals do not overlap.</p>", *table, "</table>"]
    path = out / "compare.html"
    path.write_text(page("groups compared", body), encoding="utf-8")
    return path, lines
