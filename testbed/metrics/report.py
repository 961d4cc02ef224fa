"""A run's report: results/<run-id>/report/report.html with four PNG plots.

The plots (online fraction, login load against the login server's capacity, supernode
count, clients per supernode) are drawn by `draw_plots`, which `testbed compare` reuses
to overlay several runs. matplotlib is imported only while drawing, with its object API
(Figure + Agg canvas), so no pyplot global state leaks between reports.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from testbed.metrics.series import RunResults, load_run, number

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

# Fixed geometry in inches (not a layout engine), so the time axes of all plots, in one
# report or a comparison, line up when stacked: ~1000 px wide at 110 dpi.
WIDTH, AXES_HEIGHT = 9.0, 2.3
LEFT, RIGHT, TOP, BELOW_AXES, LEGEND_ROW = 0.85, 0.25, 0.35, 0.55, 0.2
DPI = 110
AXES_PX = (WIDTH - LEFT - RIGHT) * DPI
MARK_GAP_PX, MARK_CHARS = 18, 30  # a rotated mark text is ~14 px wide, ~7.5 px a char
FONT = 9  # the smallest font size used on a plot
LOG_ABOVE = 20.0  # login plot goes logarithmic when the peak exceeds this x capacity
TIME_AXIS = "time since start [s]"


@dataclass(frozen=True)
class Line:
    """One series on a plot; `style` tells series apart when runs share a colour."""

    series: str
    label: str
    colour: str
    style: str = "-"
    in_overlay: bool = True  # also drawn when several runs are compared
    short: str = ""  # its name next to a run's label in a comparison (default: label)


@dataclass(frozen=True)
class PlotSpec:
    name: str  # PNG file stem
    kind: str  # fraction | login | count: how the y-axis is set up
    title: str
    ylabel: str
    lines: tuple[Line, ...]
    caption: str


PLOTS: tuple[PlotSpec, ...] = (
    PlotSpec("online", "fraction", "Peers online", "peers logged in [% of all peers]",
             (Line("online_fraction", "online fraction", "C0"),),
             "Share of the topology's overlay peers that are logged in. A peer whose host "
             "is down counts as offline."),
    PlotSpec("login", "login", "Login load", "logins [per s]",
             (Line("login_attempts_per_s", "client login attempts", "C3", short="attempts"),
              Line("login_server_requests_per_s", "requests at the login server", "C1", "--",
                   short="at login server"),
              Line("login_server_ok_per_s", "accepted by the login server", "C2", ":",
                   in_overlay=False)),
             "Login attempts of all clients together (at supernodes / transport level) and "
             "requests reaching the login server, against what the login server can "
             "process."),
    PlotSpec("supernodes", "count", "Supernodes", "peers acting as supernode [count]",
             (Line("supernodes", "supernodes", "C0"),),
             "Peers currently serving as supernodes: the overlay's capacity to log "
             "clients in."),
    PlotSpec("clients", "count", "Clients per supernode", "clients [per supernode]",
             (Line("clients_per_supernode_mean", "mean", "C0"),
              Line("clients_per_supernode_max", "max", "C1", "--")),
             "How many clients each supernode carries: the load on the overlay that is "
             "left."),
)


@dataclass(frozen=True)
class Plot:
    """A written PNG and what its reader should know (series that were not recorded)."""

    file: Path
    spec: PlotSpec
    notes: tuple[str, ...]


def draw_plots(runs: Sequence[RunResults], out_dir: Path) -> list[Plot]:
    """Every plot of PLOTS as out_dir/<name>.png. One run: one colour per series; several
    runs: one colour per run, one line style per series, each run's wave shaded."""
    out_dir.mkdir(parents=True, exist_ok=True)
    return [_draw(spec, runs, out_dir / f"{spec.name}.png") for spec in PLOTS]


def _draw(spec: PlotSpec, runs: Sequence[RunResults], path: Path) -> Plot:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    overlay = len(runs) > 1
    fig = Figure(figsize=(WIDTH, 3.5), dpi=DPI)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.set_title(spec.title, fontsize=FONT + 3)
    ax.set_xlabel(TIME_AXIS, fontsize=FONT + 1)
    ax.set_ylabel(spec.ylabel, fontsize=FONT + 1)
    ax.tick_params(labelsize=FONT)
    ax.grid(True, alpha=0.3)
    drawn, notes = _draw_lines(ax, spec, runs, overlay)
    end = max((run.end_time() for run in runs), default=0.0) or 1.0
    ax.set_xlim(0, end)
    if spec.kind == "fraction":
        _fraction_axis(ax)
    elif spec.kind == "login":
        _login_axis(ax, spec, runs)
    else:
        _count_axis(ax)
    _shade_triggers(ax, runs, end)
    _draw_marks(ax, runs, end, with_text=drawn > 0)
    _note(ax, notes, nothing_drawn=drawn == 0)
    _legend_and_layout(fig, ax, overlay)
    fig.savefig(path, dpi=DPI)
    return Plot(path, spec, tuple(notes))


def _draw_lines(ax: Axes, spec: PlotSpec, runs: Sequence[RunResults], overlay: bool
                ) -> tuple[int, list[str]]:
    """The data: how many lines were drawn, and a note for every series a run did not
    record (a plot with a note beats a report that failed)."""
    lines = [line for line in spec.lines if line.in_overlay or not overlay]
    notes = []
    drawn = 0
    for index, run in enumerate(runs):
        for line in lines:
            points = run.series.get(line.series)
            if not points:
                notes.append(f"no data: series.csv has no '{line.series}'"
                             + (f" for {run.label}" if overlay else ""))
                continue
            if overlay:
                label = run.label if len(lines) == 1 else \
                    f"{run.label}: {line.short or line.label}"
                colour = f"C{index % 10}"
            else:
                label, colour = line.label, line.colour
            ax.plot([t for t, _ in points], [v for _, v in points], label=label,
                    color=colour, linestyle=line.style, linewidth=1.6)
            drawn += 1
    return drawn, notes


def _fraction_axis(ax: Axes) -> None:
    from matplotlib.ticker import PercentFormatter

    ax.set_ylim(0, 1.02)
    ax.yaxis.set_major_formatter(PercentFormatter(xmax=1.0, decimals=0))
    ax.axhline(0.95, color="0.45", linestyle="--", linewidth=0.9, label="95 % online")
    ax.axhline(0.90, color="0.45", linestyle=(0, (2, 2)), linewidth=0.9, label="90 % online")


def _count_axis(ax: Axes) -> None:
    """From 0, so 10 -> 9 supernodes does not look like a collapse; whole numbers."""
    from matplotlib.ticker import MaxNLocator

    top = ax.get_ylim()[1]
    ax.set_ylim(0, top if top > 0 else 1.0)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))


def _login_axis(ax: Axes, spec: PlotSpec, runs: Sequence[RunResults]) -> None:
    """The capacity line(s), in a run's colour when compared runs differ; a log axis when
    the peak dwarfs the capacity, so both the storm and the capacity stay readable."""
    capacities: dict[float, list[int]] = {}
    for index, run in enumerate(runs):
        capacity = number(run.info.get("login_capacity"))
        if capacity is not None and capacity > 0:
            capacities.setdefault(capacity, []).append(index)
    for capacity, indexes in sorted(capacities.items()):
        differ = len(capacities) > 1
        who = "".join(f", {runs[i].label}" for i in indexes) if differ else ""
        colour = f"C{indexes[0] % 10}" if differ and len(indexes) == 1 else "black"
        ax.axhline(capacity, color=colour, linestyle="-.", linewidth=1.2,
                   label=f"login server capacity ({capacity:g}/s{who})")
    values = [v for run in runs for line in spec.lines
              for _, v in run.series.get(line.series, [])]
    peak = max(values, default=0.0)
    lowest = min(capacities, default=None)
    if lowest is not None and peak > LOG_ABOVE * lowest:
        smallest = min((v for v in values if v > 0), default=lowest)
        ax.set_yscale("log", nonpositive="clip")
        ax.set_ylim(min(lowest, max(smallest, peak / 1e4)) / 2, peak * 2)
        ax.set_ylabel(f"{spec.ylabel} (log scale)", fontsize=FONT + 1)
    else:
        ax.set_ylim(0, max(ax.get_ylim()[1], 1.0))


def _shade_triggers(ax: Axes, runs: Sequence[RunResults], end: float) -> None:
    """The restart wave; runs sharing one window share one shading."""
    windows: dict[tuple[float, float], list[int]] = {}
    for index, run in enumerate(runs):
        if run.trigger:
            windows.setdefault(run.trigger, []).append(index)
    shared = len(windows) == 1 and len(next(iter(windows.values()))) == len(runs)
    for (start, stop), indexes in windows.items():
        stop = max(stop, start + end * 0.004)  # a one-host wave stays visible
        if shared or len(runs) == 1:
            ax.axvspan(start, stop, color="0.55", alpha=0.2, linewidth=0, label="restart wave")
            continue
        for index in indexes:
            ax.axvspan(start, stop, color=f"C{index % 10}", alpha=0.10, linewidth=0,
                       label=f"restart wave, {runs[index].label}")


def _draw_marks(ax: Axes, runs: Sequence[RunResults], end: float, with_text: bool) -> None:
    """Scenario `mark` steps as thin lines with their text. The texts sit under the data
    (which stays visible) but over the grid; the HTML lists every mark in full."""
    from matplotlib.transforms import blended_transform_factory

    marks = sorted({(round(t, 1), text) for run in runs for t, text in run.marks()})
    where = blended_transform_factory(ax.transData, ax.transAxes)
    places = place_marks([t for t, _ in marks], end * MARK_GAP_PX / AXES_PX)
    for index, ((t, text), (at_top, room)) in enumerate(zip(marks, places, strict=True)):
        ax.axvline(t, color="0.3", linewidth=0.8, zorder=1.5,
                   label="scenario mark" if index == 0 else None)
        if not with_text or at_top is None:
            continue
        short = text if len(text) <= room else text[:room - 1] + "\u2026"
        ax.text(t, 0.97 if at_top else 0.03, short, transform=where, rotation=90,
                ha="left" if t < end * 0.05 else "right", va="top" if at_top else "bottom",
                fontsize=FONT, color="0.2", zorder=1.8,
                bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.7, "pad": 1})


def place_marks(times: Sequence[float], gap: float) -> list[tuple[bool | None, int]]:
    """Where each mark's text goes so no two overlap: at the top (True), the bottom
    (False) or nowhere (None, three marks within `gap`), and how many characters fit
    (half the height when the other end of the line is taken too)."""
    last = {True: -math.inf, False: -math.inf}
    slots: list[bool | None] = []
    for t in times:
        slot = next((s for s in (True, False) if t - last[s] >= gap), None)
        if slot is not None:
            last[slot] = t
        slots.append(slot)
    placed = []
    for t, slot in zip(times, slots, strict=True):
        crowded = slot is not None and any(abs(t - u) < gap and other not in (None, slot)
                                           for u, other in zip(times, slots, strict=True))
        placed.append((slot, MARK_CHARS // 2 if crowded else MARK_CHARS))
    return placed


def _note(ax: Axes, notes: list[str], nothing_drawn: bool) -> None:
    if not notes:
        return
    if nothing_drawn:
        ax.text(0.5, 0.5, "\n".join(notes), transform=ax.transAxes, ha="center",
                va="center", fontsize=FONT + 1, color="0.3", zorder=5,
                bbox={"facecolor": "white", "edgecolor": "0.8"})
        return
    ax.text(0.01, 0.03, "\n".join(notes), transform=ax.transAxes, ha="left", va="bottom",
            fontsize=FONT, color="0.3", zorder=5,
            bbox={"facecolor": "white", "edgecolor": "0.8", "alpha": 0.85})


def _legend_and_layout(fig: Figure, ax: Axes, overlay: bool) -> None:
    """The legend below the axes, so it never hides data, and the figure sized to hold
    it: the axes keep the same size and place whatever the legend holds."""
    handles, labels = ax.get_legend_handles_labels()
    columns = (1 if max(map(len, labels), default=0) > 60 else 2) if overlay else 3
    rows = -(-len(labels) // columns)
    bottom = BELOW_AXES + rows * LEGEND_ROW + (0.1 if rows else 0.0)
    height = TOP + AXES_HEIGHT + bottom
    fig.set_size_inches(WIDTH, height)
    ax.set_position((LEFT / WIDTH, bottom / height, (WIDTH - LEFT - RIGHT) / WIDTH,
                     AXES_HEIGHT / height))
    if handles:
        fig.legend(handles, labels, loc="lower center", ncols=columns, fontsize=FONT,
                   frameon=False, bbox_to_anchor=(WIDTH / 2, 0.05),
                   bbox_transform=fig.dpi_scale_trans, columnspacing=1.5)


# --- outcome metrics, in words -------------------------------------------------------------


@dataclass(frozen=True)
class Metric:
    key: str
    name: str
    kind: str  # fraction | time | recovery | rate | load | count | factor | raw
    meaning: str


METRICS: tuple[Metric, ...] = (
    Metric("min_online_fraction", "lowest online", "fraction",
           "the deepest point of the dip after the restart wave began"),
    Metric("time_of_min_s", "time of the lowest point", "time",
           "when the dip was deepest, in seconds since the run started"),
    Metric("time_to_90_s", "back to 90 % online", "recovery",
           "from the first host going down until 90 % of peers were logged in again"),
    Metric("time_to_95_s", "back to 95 % online", "recovery",
           "from the first host going down until 95 % of peers were logged in again"),
    Metric("final_online_fraction", "online at the end", "fraction",
           "share of peers logged in at the last sample"),
    Metric("peak_login_attempts_per_s", "peak client login attempts", "rate",
           "highest rate of login attempts of all clients together (supernode level)"),
    Metric("peak_login_server_requests_per_s", "peak login-server load", "load",
           "highest rate of requests reaching the login server, against its capacity"),
    Metric("login_server_requests_after_trigger", "login-server requests after the wave",
           "count", "requests the login server received from the restart wave on"),
    Metric("clients_needing_login", "clients that had to log in again", "count",
           "peers offline at some point after the restart wave began"),
    Metric("amplification", "login amplification", "factor",
           "login-server requests per client that had to log in again (1x = once each)"),
    Metric("supernodes_low", "fewest supernodes", "count",
           "lowest supernode count after the restart wave began"),
    Metric("calls_failed", "failed calls", "count", "calls that could not be set up"),
)
NOT_METRICS = frozenset({"complete", "trigger_start_s"})  # shown elsewhere in the report


def metrics_of(summaries: Sequence[dict[str, Any]]) -> list[Metric]:
    """The known metrics in a sensible order, then any new keys a newer run wrote."""
    known = {m.key for m in METRICS}
    extra = [key for summary in summaries for key in summary
             if key not in known and key not in NOT_METRICS]
    return [*METRICS, *(Metric(key, key.replace("_", " "), "raw", "")
                        for key in dict.fromkeys(extra))]


def format_metric(metric: Metric, value: object, info: dict[str, Any]) -> str:
    """A summary value in human units (%, s, x capacity), with its real-time equivalent
    when the run's timers were scaled."""
    v = number(value)
    if v is None:
        if value is None:
            return "never (not within the run)" if metric.kind == "recovery" else "n/a"
        return str(value)
    if metric.kind == "fraction":
        return f"{v * 100:.1f} %"
    if metric.kind == "time":
        return f"t = {v:.1f} s"
    if metric.kind == "recovery":
        return f"{v:.1f} s{real_time(v, info)}"
    if metric.kind in ("rate", "load"):
        capacity = number(info.get("login_capacity"))
        load = f" ({v / capacity:.1f}x capacity)" if metric.kind == "load" and capacity \
            else ""
        return f"{v:,.1f} /s{load}"
    if metric.kind == "factor":
        return f"{v:.2f}x"
    return f"{v:,.0f}" if v == int(v) else f"{v:,.2f}"


def real_time(seconds: float, info: dict[str, Any]) -> str:
    """' (~ N min in real time)' for a run whose protocol timers were scaled."""
    scale = number(info.get("time_scale"))
    if scale is None or scale <= 0 or abs(scale - 1) < 1e-9:
        return ""
    return f" (\u2248 {duration(seconds / scale)} at real timer speed)"


def duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def time_scale_text(info: dict[str, Any]) -> str:
    scale = number(info.get("time_scale"))
    if scale is None or scale <= 0:
        return "not recorded"
    if abs(scale - 1) < 1e-9:
        return "1: protocol timers run at real speed"
    return (f"{scale:g}: protocol timers run {1 / scale:.3g}x "
            f"{'faster' if scale < 1 else 'slower'} than real, so 1 min here is about "
            f"{1 / scale:.3g} min of the real network")


POLICIES = {"2007": "2007: the measured 2007 login loop (several probes at once, fixed "
                    "waits, no jitter, never gives up)",
            "fixed": "fixed: one attempt at a time, capped exponential backoff with full "
                     "jitter, a retry budget, honours the server's retry-after"}

STYLE = """body{font-family:system-ui,sans-serif;margin:1.5em auto;max-width:1040px;
color:#222;line-height:1.4}table{border-collapse:collapse;margin:.5em 0}
td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left;vertical-align:top}
th{background:#f2f2f2}td.num{text-align:right;white-space:nowrap}.why{color:#555}
.warn{background:#fff3cd;border:1px solid #e0b84c;padding:.5em .8em}
img{max-width:100%;height:auto}figure{margin:1em 0}figcaption{color:#555}"""


def page(title: str, body: list[str]) -> str:
    """A whole HTML document; `title` is escaped here, `body` must already be."""
    return "\n".join(["<!doctype html>", '<html lang="en"><head><meta charset="utf-8">',
                      f"<title>{html.escape(title)}</title>", f"<style>{STYLE}</style>",
                      "</head><body>", *body, "</body></html>", ""])


def figure_html(plot: Plot, src: str) -> str:
    notes = "".join(f"<br><strong>{html.escape(n)}</strong>" for n in plot.notes)
    return (f'<figure><img src="{html.escape(src)}" alt="{html.escape(plot.spec.title)}">'
            f"<figcaption>{html.escape(plot.spec.caption)}{notes}</figcaption></figure>")


def interrupted_note(run: RunResults) -> str:
    """'' for a complete run, else a warning saying how far its results reach."""
    if run.complete:
        return ""
    upto = run.last_sample()
    where = f"t={upto:.1f} s" if upto is not None else "the start (no samples)"
    planned = number(run.info.get("planned_duration_s"))
    of = f" of {planned:g} s planned" if planned else ""
    error = run.info.get("error")
    why = f" ({error})" if error else ""
    return (f'<p class="warn">{html.escape(run.label)}: run interrupted: results up to '
            f"{html.escape(where)}{html.escape(of)}{html.escape(why)}.</p>")


def write_report(run_dir: Path) -> Path:
    """run_dir/report/report.html (and its PNGs) for one run; returns the HTML's path."""
    run = load_run(run_dir)
    out = run_dir / "report"
    plots = draw_plots([run], out)
    body = [f"<h1>{html.escape(run.scenario)} \u2014 run {html.escape(run.run_id)}</h1>",
            *filter(None, [interrupted_note(run)]), "<h2>Outcome</h2>", _summary_table(run),
            "<h2>Plots</h2>", *(figure_html(p, p.file.name) for p in plots),
            "<h2>Run parameters</h2>", _parameters_table(run), "<h2>Events</h2>",
            _marks_html(run)]
    path = out / "report.html"
    path.write_text(page(f"{run.scenario} \u2014 run {run.run_id}", body), encoding="utf-8")
    return path


def _summary_table(run: RunResults) -> str:
    if not run.summary:
        return "<p>No summary.json: the run ended before its outcome was computed.</p>"
    rows = ["<table><tr><th>metric</th><th>value</th><th>what it means</th></tr>"]
    for metric in metrics_of([run.summary]):
        if metric.key not in run.summary:
            continue
        rows.append(f"<tr><td>{html.escape(metric.name)}</td><td class=\"num\">"
                    f"{html.escape(format_metric(metric, run.summary[metric.key], run.info))}"
                    f"</td><td class=\"why\">{html.escape(metric.meaning)}</td></tr>")
    return "\n".join([*rows, "</table>"])


def parameters(run: RunResults) -> list[tuple[str, str]]:
    """The run's settings in words, for the report and the comparison."""
    info = run.info
    policy = str(info.get("policy", "?"))
    capacity = number(info.get("login_capacity"))
    length = number(info.get("duration_s"))
    return [("scenario", run.scenario), ("topology", str(info.get("topology", "?"))),
            ("seed", str(info.get("seed", "?"))), ("client policy", POLICIES.get(policy, policy)),
            ("time scale", time_scale_text(info)), ("overlay peers", str(info.get("peers", "?"))),
            ("login server capacity", f"{capacity:g} logins/s" if capacity else "not recorded"),
            ("started", str(info.get("started", "?"))),
            ("duration", f"{length:.1f} s{real_time(length, info)}" if length is not None
             else "?"),
            ("complete", "yes" if run.complete else "no (interrupted)")]


def _parameters_table(run: RunResults) -> str:
    rows = [f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>"
            for k, v in parameters(run)]
    url = run.info.get("prometheus_url")
    if url:
        rows.append(f"<tr><th>Prometheus (during the run)</th><td>{html.escape(str(url))}; "
                    f"afterwards: <code>testbed results serve {html.escape(str(run.run_dir))}"
                    "</code></td></tr>")
    return "\n".join(["<table>", *rows, "</table>"])


def _marks_html(run: RunResults) -> str:
    links = ('<p>Every executed step: <a href="../steps.jsonl">steps.jsonl</a>; data: '
             '<a href="../series.csv">series.csv</a>, <a href="../summary.json">summary.json'
             '</a>, <a href="../run.json">run.json</a>.</p>')
    marks = run.marks()
    if not marks:
        return links
    rows = [f'<tr><td class="num">{t:.1f} s</td><td>{html.escape(text)}</td></tr>'
            for t, text in marks]
    return "\n".join(["<table><tr><th>time</th><th>scenario mark</th></tr>", *rows,
                      "</table>", links])
