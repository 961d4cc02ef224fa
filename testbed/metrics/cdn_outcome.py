"""The P2P CDN's series and outcome metrics (summary.json), next to the overlay's.

Every series is one PromQL query over the exporters' metrics (lighttpd's counters at
the origin, libtorrent's per-source byte counters at the PCs), so it can be pasted into
Prometheus's UI. The outcome numbers are computed from the series in pure Python
(unit-tested), except the completion-time quantiles, which Prometheus computes from the
PCs' histograms over a phase of the run.
"""

from __future__ import annotations

from typing import Any, Protocol

from testbed.metrics.outcome import Series, Trigger
from testbed.plan.model import NetworkPlan

QUANTILES = (0.5, 0.95)


def has_cdn(plan: NetworkPlan) -> bool:
    return any(n.kind == "bt_peer" for n in plan.nodes.values())


def cdn_queries(plan: NetworkPlan, interval: float) -> dict[str, str]:
    """Nothing for a topology without a CDN."""
    if not has_cdn(plan):
        return {}
    w = f"{max(4 * interval, 2):g}s"
    received = f"sum(rate(bt_payload_received_bytes_total[{w}]))"
    origins = "|".join(sorted(n.name for n in plan.nodes.values() if n.kind == "origin"))
    return {
        # the origin's uplink as the kernel counts it (lighttpd's own counter, also in
        # Prometheus as origin_http_sent_bytes_total, moves only as requests end)
        "origin_egress_bytes_per_s": f'sum(rate(testbed_link_tx_bytes_total{{node=~"{origins}"}}'
                                     f"[{w}])) or vector(0)",
        "origin_http_requests_per_s": f"sum(rate(origin_http_requests_total[{w}])) "
                                      "or vector(0)",
        "peer_bytes_per_s": f'sum(rate(bt_payload_received_bytes_total{{source="peer"}}'
                            f"[{w}])) or vector(0)",
        "web_seed_bytes_per_s": f'sum(rate(bt_payload_received_bytes_total{{source='
                                f'"origin"}}[{w}])) or vector(0)',
        "peer_share": f'sum(rate(bt_payload_received_bytes_total{{source="peer"}}[{w}])) '
                      f"/ ({received} > 0)",
        "downloads_active": "sum(bt_downloads_active) or vector(0)",
        "downloads_stalled": "sum(bt_downloads_stalled) or vector(0)",
        "seeds_online": "count(bt_torrents_seeding > 0) or vector(0)",
        "pcs_up": "count(bt_up == 1) or vector(0)",
    }


class InstantQuerier(Protocol):
    def query(self, promql: str, at: float | None = None) -> list[dict[str, Any]]: ...


def _integral(points: Series, start: float, end: float) -> float:
    total = 0.0
    for (t0, v0), (t1, v1) in zip(points, points[1:], strict=False):
        if t0 >= start and t1 <= end:
            total += (t1 - t0) * (v0 + v1) / 2
    return total


def _mean(points: Series, start: float, end: float) -> float | None:
    inside = [v for t, v in points if start <= t < end]
    return sum(inside) / len(inside) if inside else None


def window_figures(series: dict[str, Series], start: float, end: float
                   ) -> dict[str, float | None]:
    """The origin's mean egress (bytes/s) over [start, end) and the share of the payload
    the PCs received from peers in it (None: nothing measured there)."""
    mean = _mean(series.get("origin_egress_bytes_per_s", []), start, end)
    from_peers = _integral(series.get("peer_bytes_per_s", []), start, end)
    from_origin = _integral(series.get("web_seed_bytes_per_s", []), start, end)
    total = from_peers + from_origin
    return {"origin_mean_bytes_per_s": None if mean is None else round(mean),
            "peer_share": round(from_peers / total, 4) if total else None}


def phases(trigger: Trigger | None, end: float, after: float = 60.0
           ) -> dict[str, tuple[float, float]]:
    """before: up to the first reboot; wave: from it to `after` s past the last one."""
    if trigger is None:
        return {"before": (0.0, end)}
    return {"before": (0.0, trigger.start),
            "wave": (trigger.start, min(end, trigger.end + after))}


def summarize_cdn(series: dict[str, Series], trigger: Trigger | None, end: float
                  ) -> dict[str, Any]:
    """Origin load before and during the wave, its spike, and who served the bytes."""
    origin = series.get("origin_egress_bytes_per_s", [])
    out: dict[str, Any] = {}
    spans = phases(trigger, end)
    for name, (a, b) in spans.items():
        figures = window_figures(series, a, b)
        out[f"origin_mean_bytes_per_s_{name}"] = figures["origin_mean_bytes_per_s"]
        out[f"peer_share_{name}"] = figures["peer_share"]
    peak = max((v for t, v in origin if "wave" not in spans or t >= spans["wave"][0]),
               default=None)
    out["origin_peak_bytes_per_s"] = None if peak is None else round(peak)
    before = out.get("origin_mean_bytes_per_s_before")
    out["origin_spike_factor"] = round(peak / before, 2) if peak and before else None
    stalled = [v for _, v in series.get("downloads_stalled", [])]
    out["downloads_stalled_max"] = max(stalled) if stalled else None
    seeds = [v for t, v in series.get("seeds_online", []) if trigger is None
             or t >= trigger.start]
    out["seeds_online_low"] = min(seeds) if seeds else None
    return out


def completion(prometheus: InstantQuerier, start_unix: float, end_unix: float,
               trigger: Trigger | None) -> dict[str, Any]:
    """Downloads finished and failed, and the completion-time quantiles over the whole
    run and over requests that finished from the wave on (the tail)."""
    out: dict[str, Any] = {}
    whole = max(1, round(end_unix - start_unix))

    def value(promql: str) -> float | None:
        result = prometheus.query(promql, at=end_unix)
        if not result:
            return None
        number = float(result[0]["value"][1])
        return None if number != number else round(number, 2)  # NaN: no downloads

    def count(promql: str) -> int | None:  # increase() extrapolates: 32.04 downloads
        found = value(promql)
        return None if found is None else round(found)

    out["downloads_completed"] = count(
        f"sum(increase(bt_downloads_completed_total[{whole}s]))")
    out["downloads_failed"] = count(f"sum(increase(bt_downloads_failed_total[{whole}s]))")
    spans = {"": whole}
    if trigger is not None:
        spans["_after_wave"] = max(1, round(end_unix - (start_unix + trigger.start)))
    for suffix, seconds in spans.items():
        for q in QUANTILES:
            out[f"completion_p{round(q * 100)}_s{suffix}"] = value(
                f"histogram_quantile({q}, sum by (le) (increase("
                f"bt_download_seconds_bucket[{seconds}s])))")
    return out


def cdn_outcome_class() -> dict[str, Any]:
    """A CDN without overlay peers or SIP phones has no online fraction, which the outcome
    classes judge (testbed.metrics.classify): an absent overlay's 0 % would read as
    `metastable`. Its outcome is the origin's load and the downloads, above."""
    return {"outcome_class": "undetermined", "time_to_recover_s": None,
            "outcome_reason": "no overlay peers or SIP phones, whose online fraction the "
                              "outcome classes judge: a CDN run's outcome is its origin "
                              "load, peer share and downloads"}


def outcome_line(summary: dict[str, Any]) -> str:
    def pct(v: Any) -> str:
        return "?" if v is None else f"{v:.0%}"

    def rate(v: Any) -> str:
        return "?" if v is None else f"{v * 8 / 1e6:.2f} Mbit/s"

    return (f"== CDN: origin {rate(summary.get('origin_mean_bytes_per_s_before'))} before, "
            f"peak {rate(summary.get('origin_peak_bytes_per_s'))} in the wave; peer share "
            f"{pct(summary.get('peer_share_before'))} before, "
            f"{pct(summary.get('peer_share_wave'))} in the wave; downloads done "
            f"{summary.get('downloads_completed')}, failed {summary.get('downloads_failed')}"
            f", p95 {summary.get('completion_p95_s')} s")


def cdn_summary(plan: NetworkPlan, summary: dict[str, Any], series: dict[str, Series],
                trigger: Trigger | None, prometheus: InstantQuerier, start_unix: float,
                end_unix: float) -> dict[str, Any]:
    """summary.json with the CDN's keys added (unchanged for a topology without a CDN);
    without overlay peers, the overlay's keys (online fraction, logins) are left out, as
    they would only say 0."""
    if not has_cdn(plan):
        return summary
    if not any(n.kind in ("peer", "login") for n in plan.nodes.values()):
        summary = {k: summary[k] for k in ("trigger_start_s", "complete") if k in summary}
    return {**summary, **summarize_cdn(series, trigger, end_unix - start_unix),
            **completion(prometheus, start_unix, end_unix, trigger)}
