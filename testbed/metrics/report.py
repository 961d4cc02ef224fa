"""A run's report: results/<run-id>/report/report.html with the outcome metrics in words,
the run's parameters and marks, and the plots of `testbed.metrics.plots`.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from testbed.metrics.calibration import calibration_html
from testbed.metrics.plots import Plot, cdn_alone, draw_plots
from testbed.metrics.series import RunResults, load_run, number

# --- outcome metrics, in words -------------------------------------------------------------


@dataclass(frozen=True)
class Metric:
    key: str
    name: str
    kind: str  # fraction | time | recovery | rate | load | count | factor | bitrate
    #            | seconds | raw
    meaning: str


# the P2P CDN's outcome (testbed.metrics.cdn_outcome; docs/cdn.md), read by a person: the
# origin's load in Mbit/s, shares in %, completion times in seconds
CDN_METRICS: tuple[Metric, ...] = (
    Metric("origin_mean_bytes_per_s_before", "origin egress before the wave", "bitrate",
           "the origin's mean upload (its uplink) before the first reboot"),
    Metric("origin_mean_bytes_per_s_wave", "origin egress in the wave", "bitrate",
           "the origin's mean upload from the first reboot until 60 s after the last"),
    Metric("origin_peak_bytes_per_s", "origin egress peak", "bitrate",
           "the origin's highest upload from the wave on: its load spike"),
    Metric("origin_spike_factor", "origin spike", "factor",
           "the peak over the mean before the wave"),
    Metric("peer_share_before", "bytes from peers before the wave", "fraction",
           "share of the payload the PCs received from other PCs, not the origin"),
    Metric("peer_share_wave", "bytes from peers in the wave", "fraction",
           "the same from the first reboot until 60 s after the last"),
    Metric("downloads_completed", "downloads finished", "count",
           "episodes the PCs fetched completely during the run"),
    Metric("downloads_failed", "downloads failed", "count",
           "episodes not finished within give_up of being asked for"),
    Metric("downloads_stalled_max", "most downloads stalled", "count",
           "highest number of downloads at once without progress for stall_after"),
    Metric("completion_p50_s", "completion time, median", "seconds",
           "from asking for an episode to having it all, over the run"),
    Metric("completion_p95_s", "completion time, 95th percentile", "seconds",
           "the tail of the same, over the run"),
    Metric("completion_p50_s_after_wave", "completion time after the wave began, median",
           "seconds", "downloads that finished from the first reboot on"),
    Metric("completion_p95_s_after_wave", "completion time after the wave began, 95th "
           "percentile", "seconds", "the tail of downloads that finished from the first "
           "reboot on"),
    Metric("seeds_online_low", "fewest PCs serving", "count",
           "lowest number of PCs serving an episode from the wave on"),
)

METRICS: tuple[Metric, ...] = (
    Metric("outcome_class", "outcome class", "raw",
           "recovered, degraded or metastable, by the definitions in docs/scenarios.md"),
    Metric("time_to_recover_s", "time to recover", "recovery",
           "from the first host going down until the scenario's recovered_at online "
           "fraction after the low point"),
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
    *CDN_METRICS,
)
# shown elsewhere in the report
NOT_METRICS = frozenset({"complete", "trigger_start_s", "outcome_reason", "thresholds",
                         "trigger_over_s", "judged_from_s", "final_online_median"})


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
    if metric.kind == "bitrate":  # bytes per second in, bits per second out
        return f"{v * 8 / 1e6:.2f} Mbit/s"
    if metric.kind == "seconds":
        return f"{v:.1f} s"
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
        return "1: the overlay runs at real speed"
    return (f"{scale:g}: the overlay's clock runs {1 / scale:.3g}x "
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
    # the measured Skype outages are an overlay's figures: a CDN alone has none to match
    against = [] if cdn_alone([run]) else ["<h2>Against the measured outage</h2>",
                                           calibration_html(run)]
    body = [f"<h1>{html.escape(run.scenario)} \u2014 run {html.escape(run.run_id)}</h1>",
            *filter(None, [interrupted_note(run)]), "<h2>Outcome</h2>", _class_html(run),
            _summary_table(run), *against,
            "<h2>Plots</h2>", *(figure_html(p, p.file.name) for p in plots),
            "<h2>Run parameters</h2>", _parameters_table(run), "<h2>Events</h2>",
            _marks_html(run)]
    path = out / "report.html"
    path.write_text(page(f"{run.scenario} \u2014 run {run.run_id}", body), encoding="utf-8")
    return path


def _class_html(run: RunResults) -> str:
    found = run.summary.get("outcome_class")
    if not found:
        return ""
    return (f"<p><strong>{html.escape(str(found))}</strong>: "
            f"{html.escape(str(run.summary.get('outcome_reason', '')))}.</p>")


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
    if cdn_alone([run]):  # no overlay: its policy, peers and login server are not there
        given = info.get("params") or {}
        return [("scenario", run.scenario), ("topology", str(info.get("topology", "?"))),
                ("topology parameters", ", ".join(f"{k}={v}" for k, v in given.items())
                 or "the topology's defaults"), ("seed", str(info.get("seed", "?"))),
                ("started", str(info.get("started", "?"))),
                ("duration", f"{length:.1f} s" if length is not None else "?"),
                ("complete", "yes" if run.complete else "no (interrupted)")]
    return [("scenario", run.scenario), ("topology", str(info.get("topology", "?"))),
            ("seed", str(info.get("seed", "?"))), ("client policy", POLICIES.get(policy, policy)),
            ("time scale", time_scale_text(info)), ("overlay peers", str(info.get("peers", "?"))),
            ("login server capacity", f"{capacity:g} logins per lab second" if capacity
             else "not recorded"),
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
