"""`testbed compare`: several runs side by side (comparison.html and overlaid PNGs).

Typically the 2007 behaviour against the fix on the same topology: one column per run in
the outcome table, one colour per run on the plots. The plots and the wording of each
metric come from the single-run report, so both say the same thing the same way.
"""

from __future__ import annotations

import html
import os
from pathlib import Path
from urllib.parse import quote

from testbed.errors import ResultsError
from testbed.metrics.plots import draw_plots
from testbed.metrics.report import (
    figure_html,
    format_metric,
    interrupted_note,
    metrics_of,
    page,
    parameters,
)
from testbed.metrics.series import RunResults, load_run


def write_comparison(run_dirs: list[Path], out_dir: Path) -> Path:
    """out_dir/comparison.html (and its PNGs) for the runs, in the order given; returns
    the HTML's path. Every run is read before anything is written, so a broken run
    leaves no half-written comparison behind."""
    if not run_dirs:
        raise ResultsError("nothing to compare: give at least one run directory")
    runs = [load_run(run_dir) for run_dir in run_dirs]
    plots = draw_plots(runs, out_dir)
    title = "Comparison: " + " vs ".join(run.label for run in runs)
    body = [f"<h1>{html.escape(title)}</h1>", *filter(None, map(interrupted_note, runs)),
            "<h2>Outcome</h2>", _metrics_table(runs), "<h2>Plots</h2>",
            *(figure_html(p, p.file.name) for p in plots),
            "<h2>Run parameters</h2>", _parameters_table(runs, out_dir)]
    path = out_dir / "comparison.html"
    path.write_text(page(title, body), encoding="utf-8")
    return path


def _header(runs: list[RunResults], first: str, last: str = "") -> str:
    cells = "".join(f"<th>{html.escape(run.label)}</th>" for run in runs)
    tail = f"<th>{html.escape(last)}</th>" if last else ""
    return f"<tr><th>{html.escape(first)}</th>{cells}{tail}</tr>"


def _metrics_table(runs: list[RunResults]) -> str:
    """One row per outcome metric that any run has; '-' where a run lacks it (an
    interrupted run may have no summary.json)."""
    rows = ["<table>", _header(runs, "metric", "what it means")]
    for metric in metrics_of([run.summary for run in runs]):
        if not any(metric.key in run.summary for run in runs):
            continue
        cells = "".join(
            '<td class="num">' + html.escape(
                format_metric(metric, run.summary[metric.key], run.info)
                if metric.key in run.summary else "-") + "</td>"
            for run in runs)
        rows.append(f"<tr><td>{html.escape(metric.name)}</td>{cells}"
                    f'<td class="why">{html.escape(metric.meaning)}</td></tr>')
    return "\n".join([*rows, "</table>"])


def _parameters_table(runs: list[RunResults], out_dir: Path) -> str:
    settings = [dict(parameters(run)) for run in runs]
    rows = ["<table>", _header(runs, "setting")]
    for name in settings[0]:
        cells = "".join(f"<td>{html.escape(s.get(name, '-'))}</td>" for s in settings)
        rows.append(f"<tr><th>{html.escape(name)}</th>{cells}</tr>")
    links = "".join(f"<td>{_run_links(run, out_dir)}</td>" for run in runs)
    rows.append(f"<tr><th>files</th>{links}</tr>")
    return "\n".join([*rows, "</table>"])


def _run_links(run: RunResults, out_dir: Path) -> str:
    """Relative links, so a results/ tree can be copied or served as a whole."""
    def link(path: Path, text: str) -> str:
        href = quote(Path(os.path.relpath(path.resolve(), out_dir.resolve())).as_posix())
        return f'<a href="{html.escape(href)}">{html.escape(text)}</a>'

    found = [link(run.run_dir / "report" / "report.html", "report")] \
        if (run.run_dir / "report" / "report.html").is_file() else []
    found += [link(run.run_dir / name, name) for name in ("steps.jsonl", "series.csv")
              if (run.run_dir / name).is_file()]
    return ", ".join(found)
