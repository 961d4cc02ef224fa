"""The report's plots: online fraction, login load against the login server's capacity,
supernode count, clients per supernode, one PNG each, for one run or several overlaid
(`testbed compare`), with the trigger (restart wave or crash) shaded and the marks.

matplotlib is imported only while drawing, with its object API (Figure + Agg canvas),
so no pyplot global state leaks between reports.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from testbed.metrics.series import RunResults, number

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


# The P2P CDN's plots (docs/cdn.md), drawn only for runs that recorded their series.
CDN_PLOTS: tuple[PlotSpec, ...] = (
    PlotSpec("cdn-bytes", "count", "Who served the bytes", "payload [bytes per s]",
             (Line("origin_egress_bytes_per_s", "origin egress (its uplink)", "C3"),
              Line("web_seed_bytes_per_s", "received from the origin's web seed", "C1", "--"),
              Line("peer_bytes_per_s", "received from peers", "C2")),
             "The origin's egress against what the PCs received from it and from each "
             "other: the origin's load spike when the serving PCs reboot."),
    PlotSpec("cdn-downloads", "count", "Downloads and seeds", "count",
             (Line("downloads_active", "downloads in progress", "C0"),
              Line("downloads_stalled", "stalled", "C3", "--"),
              Line("seeds_online", "PCs serving an episode", "C2", ":")),
             "Downloads in progress and stalled, and the PCs that serve something."),
)


@dataclass(frozen=True)
class Plot:
    """A written PNG and what its reader should know (series that were not recorded)."""

    file: Path
    spec: PlotSpec
    notes: tuple[str, ...]


def cdn_alone(runs: Sequence[RunResults]) -> bool:
    """Runs of a P2P CDN without overlay peers or SIP phones (run.json's peers: 0): the
    overlay's plots and calibration would only show an absent overlay's zeros."""
    return bool(runs) and all(not number(run.info.get("peers")) and any(
        run.series.get(line.series) for spec in CDN_PLOTS for line in spec.lines)
        for run in runs)


def draw_plots(runs: Sequence[RunResults], out_dir: Path) -> list[Plot]:
    """Every plot of PLOTS (and of CDN_PLOTS for runs with a CDN) as out_dir/<name>.png.
    One run: one colour per series; several runs: one colour per run, one line style per
    series, each run's wave shaded."""
    out_dir.mkdir(parents=True, exist_ok=True)
    cdn = [spec for spec in CDN_PLOTS if any(run.series.get(line.series) for run in runs
                                             for line in spec.lines)]
    overlay = () if cdn_alone(runs) else PLOTS
    return [_draw(spec, runs, out_dir / f"{spec.name}.png") for spec in (*overlay, *cdn)]


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
    """The trigger (restart wave or crash: first to last host going down); runs sharing
    one window share one shading."""
    windows: dict[tuple[float, float], list[int]] = {}
    for index, run in enumerate(runs):
        if run.trigger:
            windows.setdefault(run.trigger, []).append(index)
    shared = len(windows) == 1 and len(next(iter(windows.values()))) == len(runs)
    for (start, stop), indexes in windows.items():
        stop = max(stop, start + end * 0.004)  # a one-host wave stays visible
        if shared or len(runs) == 1:
            ax.axvspan(start, stop, color="0.55", alpha=0.2, linewidth=0,
                       label="trigger: hosts going down")
            continue
        for index in indexes:
            ax.axvspan(start, stop, color=f"C{index % 10}", alpha=0.10, linewidth=0,
                       label=f"trigger, {runs[index].label}")


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
