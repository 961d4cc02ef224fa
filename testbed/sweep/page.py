"""sweep.html: the phase diagram (outcome class and median trough over the first two
axes), the groups with their intervals, and the factors' effects."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from testbed.metrics.report import page
from testbed.sweep.grid import Axis
from testbed.sweep.results import Group
from testbed.sweep.stats import Effect

COLOURS = {"recovered": "#cdeccd", "degraded": "#fff1b8", "metastable": "#f5b7b1",
           "undetermined": "#e6e6e6"}
SHOWN = ("min_online_fraction", "final_online_fraction", "time_to_recover_s",
         "amplification", "trough_2007", "signalling", "peers_contacted")


def _cell_html(group: Group | None) -> str:
    """Coloured by the majority class; a cell whose runs disagree is marked mixed (a
    boundary often runs through such cells)."""
    if group is None or not group.runs:
        return '<td style="background:#fff">not run yet</td>'
    trough = group.stats.get("min_online_fraction")
    counts = ", ".join(f"{n} {c}" for c, n in sorted(group.classes.items()))
    mixed = len(group.classes) > 1
    name = f"mixed (mostly {group.majority})" if mixed else group.majority
    colour = "#f8d49b" if mixed else COLOURS.get(group.majority, "#fff")
    text = f"<strong>{html.escape(name)}</strong>"
    if trough:
        text += f"<br>trough {trough.median:.0%}"
    return f'<td style="background:{colour}">{text}<br><small>{html.escape(counts)}</small></td>'


def phase_diagram(axes: list[Axis], found: list[Group]) -> str:
    """Rows: the first axis; columns: the second (one column without one)."""
    if not axes:
        return "<p>No grid: one cell, repeated.</p>"
    rows_axis, cols_axis = axes[0], axes[1] if len(axes) > 1 else None
    cols = cols_axis.values if cols_axis else ("",)
    out = ["<table><tr><th>" + html.escape(rows_axis.name) + " \u2193 / "
           + (html.escape(cols_axis.name) if cols_axis else "") + " \u2192</th>"
           + "".join(f"<th>{html.escape(c)}</th>" for c in cols) + "</tr>"]
    for r in rows_axis.values:
        cells = []
        for c in cols:
            want = {(rows_axis.name, r), *([(cols_axis.name, c)] if cols_axis else [])}
            match = next((g for g in found if want <= set(g.cell.values)), None)
            cells.append(_cell_html(match))
        out.append(f"<tr><th>{html.escape(r)}</th>{''.join(cells)}</tr>")
    out.append("</table>")
    if len(axes) > 2:
        out.append("<p>More than two axes: each diagram cell shows the first cell of the "
                   "others' combinations; every group is in the table below.</p>")
    return "\n".join(out)


def groups_table(found: list[Group]) -> str:
    out = ["<table><tr><th>cell</th><th>runs</th><th>classes</th>"
           + "".join(f"<th>{html.escape(m)}</th>" for m in SHOWN) + "</tr>"]
    for g in found:
        stats = "".join('<td class="num">' + (html.escape(g.stats[m].text()) if m in g.stats
                                               else "n/a") + "</td>" for m in SHOWN)
        counts = ", ".join(f"{n} {c}" for c, n in sorted(g.classes.items()))
        out.append(f"<tr><td>{html.escape(g.cell.label)}</td><td>{g.runs}</td>"
                   f"<td>{html.escape(counts)}</td>{stats}</tr>")
    out.append("</table>")
    return "\n".join(out)


def effects_table(found: list[Effect]) -> str:
    if not found:
        return "<p>No two-level factor to state an effect for.</p>"
    out = ["<table><tr><th>factor</th><th>metric</th><th>from</th><th>to</th><th>change of "
           "the median</th><th>bounds</th><th>larger than the intervals?</th></tr>"]
    for e in found:
        low, high = e.bounds
        out.append(
            f"<tr><td>{html.escape(e.factor)}: {html.escape(e.from_level)} \u2192 "
            f"{html.escape(e.to_level)}</td><td>{html.escape(e.metric)}</td>"
            f'<td class="num">{html.escape(e.before.text())}</td>'
            f'<td class="num">{html.escape(e.after.text())}</td>'
            f'<td class="num">{e.change:+.3g}</td><td class="num">[{low:+.3g}, {high:+.3g}]'
            f"</td><td>{'yes' if e.beyond_intervals else 'no'}</td></tr>")
    out.append("</table>")
    return "\n".join(out)


def write_page(path: Path, plan: dict[str, Any], axes: list[Axis], found: list[Group],
               effects: list[Effect], finished: int, planned: int) -> Path:
    grid = "; ".join(f"{a.name} = {', '.join(a.values)}" for a in axes) or "none"
    body = [
        f"<h1>Sweep: {html.escape(str(plan.get('scenario')))} on "
        f"{html.escape(str(plan.get('topology')))}</h1>",
        f"<p>Grid: {html.escape(grid)}; {plan.get('repeat')} run(s) per cell, seeds "
        f"{plan.get('base_seed')} + repeat; fixed parameters: "
        f"{html.escape(str(plan.get('overrides') or 'none'))}. {finished} of {planned} "
        "runs finished.</p>",
        "<h2>Phase diagram</h2>",
        "<p>Each cell: the majority outcome class of its runs (definitions in "
        "docs/scenarios.md) and the median trough (lowest online fraction).</p>",
        phase_diagram(axes, found),
        "<h2>Groups</h2>",
        "<p>Median [interval] per metric: the distribution-free interval of the median "
        "(order statistics); its coverage is given, since below 6 runs no interval "
        "reaches 95 % (3 runs: 75 %).</p>",
        groups_table(found),
        "<h2>Effects</h2>",
        "<p>For each two-level factor, first with the other factors pooled, then at each "
        "level of every other factor: the change of the median and the bounds of every "
        "difference between the two intervals. \u201cyes\u201d: the intervals do not "
        "overlap.</p>",
        effects_table(effects),
    ]
    path.write_text(page(f"sweep {plan.get('scenario')}", body), encoding="utf-8")
    return path
