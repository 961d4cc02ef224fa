"""How far a run is from what was measured: each dimensionless outcome next to the figure
of ../shared/CALIBRATION.md it corresponds to, with the ratio (ours / measured).

Every report carries this table, and sweeps aggregate the same values, so "the 2007 run
peaks at 100x the fixed run's login attempts" is read against "signalling traffic was 3x
normal" instead of on its own. Pure: computed from a run's series, summary and run.json.
"""

from __future__ import annotations

import html
import statistics
from collections.abc import Callable
from dataclasses import dataclass

from testbed.metrics.series import RunResults, Series, number

BASELINE_S = 10.0  # steady state: the last seconds before the first host goes down


@dataclass(frozen=True)
class Figure:
    key: str
    outage: str  # 2007 or 2010
    measured_name: str
    measured: float
    measured_text: str
    ours: str  # how the emulation's value is computed, in words
    compute: Callable[[RunResults], float | None]


@dataclass(frozen=True)
class Row:
    figure: Figure
    value: float | None
    why_missing: str = ""

    @property
    def ratio(self) -> float | None:
        return None if self.value is None else self.value / self.figure.measured


def _start(run: RunResults) -> float | None:
    trigger = run.trigger
    return trigger[0] if trigger else None


def _after(points: Series, t0: float) -> Series:
    return [(t, v) for t, v in points if t >= t0]


def _integral(points: Series) -> float:
    return sum((t1 - t0) * (v0 + v1) / 2
               for (t0, v0), (t1, v1) in zip(points, points[1:], strict=False))


def trough(run: RunResults) -> float | None:
    return number(run.summary.get("min_online_fraction"))


def signalling_ratio(run: RunResults) -> float | None:
    """Mean bytes/s on the lab's interfaces from the trigger on, over the steady state."""
    start, points = _start(run), run.series.get("signalling_bytes_per_s", [])
    if start is None or not points:
        return None
    before = [v for t, v in points if start - BASELINE_S <= t < start]
    after = [v for _, v in _after(points, start)]
    if not before or not after or statistics.median(before) <= 0:
        return None
    return statistics.fmean(after) / statistics.median(before)


def contacts_ratio(run: RunResults) -> float | None:
    """Supernode probes per client that had to log in again (each login attempt probes one
    supernode), over those of a normal login: one round of the policy's probes (2007: 4
    at once, fixed: 1). Not the lab's first login from the series: it mostly happens
    before the first scrape, so a partial count would inflate the ratio."""
    from testbed.peer.policies import POLICIES

    start, points = _start(run), run.series.get("login_attempts_per_s", [])
    needing = number(run.summary.get("clients_needing_login"))
    policy = POLICIES.get(str(run.info.get("policy")))
    if start is None or not points or not needing or policy is None:
        return None
    return _integral(_after(points, start)) / needing / policy.parallel_probes


def supernode_load(run: RunResults) -> float | None:
    """Peak joins/s offered per remaining supernode after the trigger, over the nominal
    join rate (topology parameter sn_joins, per real second, on the lab's clock)."""
    start = _start(run)
    nominal, scale = number((run.info.get("params") or {}).get("sn_joins")), number(
        run.info.get("time_scale"))
    joins = dict(run.series.get("sn_joins_per_s", []))
    supernodes = dict(run.series.get("supernodes", []))
    if start is None or not nominal or not scale or not joins:
        return None
    per_sn = [joins[t] / supernodes[t] for t in joins if t >= start and supernodes.get(t)]
    return max(per_sn) / (nominal / scale) if per_sn else None


FIGURES: tuple[Figure, ...] = (
    Figure("trough_2007", "2007", "online at the trough", 0.025,
           "2-3 % of normal (150k of 5-6M)", "lowest online fraction after the trigger "
           "(resolution: one peer of the lab; 0 when no supernode is left at all)",
           trough),
    Figure("signalling", "2007", "signalling traffic", 3.0, "~3x normal (Rossi et al.)",
           "mean bytes/s on all lab interfaces from the trigger on / steady state before "
           "it (includes the calls' media)", signalling_ratio),
    Figure("peers_contacted", "2007", "peers contacted per client", 10.0,
           "~10x more (Rossi et al.)", "supernode probes per client that logged in again / "
           "those of a normal login (one round of the policy's probes); counted to the "
           "end of the run, so it grows with how long the outage lasts", contacts_ratio),
    Figure("trough_2010", "2010", "online at the low point", 0.07,
           "~7 % of the normal peak (1.6M of 23M)", "lowest online fraction after the "
           "trigger", trough),
    Figure("supernode_load", "2010", "load on the surviving supernodes", 100.0,
           "~100x normal for the time of day", "peak joins/s offered per supernode / its "
           "nominal join rate (sn_joins)", supernode_load),
)


def calibration_rows(run: RunResults) -> list[Row]:
    rows = []
    for figure in FIGURES:
        value = figure.compute(run)
        rows.append(Row(figure, value, "" if value is not None else
                        "not measured in this run (no trigger, or the series/parameter "
                        "it needs is missing)"))
    return rows


def calibration_values(run: RunResults) -> dict[str, float | None]:
    """{key: ours} for sweeps and comparisons."""
    return {row.figure.key: row.value for row in calibration_rows(run)}


def _fmt(value: float | None, fraction: bool) -> str:
    if value is None:
        return "n/a"
    return f"{value * 100:.1f} %" if fraction else f"{value:.2f}x"


def calibration_html(run: RunResults) -> str:
    """The report's table: which measured figure, ours, the ratio, and how ours is made."""
    out = ["<p>Each dimensionless outcome of this run next to the figure measured during "
           "the real outage (CALIBRATION.md). A ratio of 1 matches; within 0.5-2 is "
           "\u201cwithin 2x\u201d. Rows of the other outage are shown for reference.</p>",
           "<table><tr><th>outage</th><th>measured</th><th>real figure</th><th>this run</th>"
           "<th>ratio</th><th>how this run's value is computed</th></tr>"]
    for row in calibration_rows(run):
        f = row.figure
        fraction = f.key.startswith("trough")
        ratio = row.ratio
        mark = "" if ratio is None else (" (within 2x)" if 0.5 <= ratio <= 2 else
                                         " (off by more than 2x)")
        out.append(
            f"<tr><td>{f.outage}</td><td>{html.escape(f.measured_name)}</td>"
            f"<td>{html.escape(f.measured_text)}</td>"
            f'<td class="num">{_fmt(row.value, fraction)}</td>'
            f'<td class="num">{"n/a" if ratio is None else f"{ratio:.2f}"}{mark}</td>'
            f'<td class="why">{html.escape(f.ours if row.value is not None else row.why_missing)}'
            "</td></tr>")
    out.append("</table>")
    return "\n".join(out)
