"""A run's time series (queried from its Prometheus) and outcome metrics (summary.json).

The series are what the report plots and `compare` overlays; each is one PromQL query,
so a user can paste it into Prometheus's UI during or after a run
(`testbed results serve RUN`). Outcome metrics are computed from those series in pure
Python, so they are unit-tested without a lab.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

Series = list[tuple[float, float]]  # (seconds since run start, value)


def series_queries(peers: int, interval: float, workload: str = "overlay") -> dict[str, str]:
    """PromQL per exported series. `peers` is the topology's count of overlay users (peers
    not held back): a peer whose host is down has no series at all and counts as offline.
    workload "sip": the same outcome names over Kamailio and the UAs (testbed/sip)."""
    if workload == "sip":
        from testbed.sip.queries import sip_series_queries

        return sip_series_queries(peers, interval)
    window = f"{max(4 * interval, 2):g}s"
    return {
        "online_fraction": "(sum(peer_logged_in{kind=\"peer\",held_back!=\"true\"}) "
                           f"or vector(0)) / {peers}",
        "login_attempts_per_s": f"sum(rate(peer_login_attempts_total[{window}])) or vector(0)",
        "login_server_requests_per_s":
            f"sum(rate(login_server_requests_total[{window}])) or vector(0)",
        "login_server_ok_per_s":
            f"sum(rate(login_server_requests_total{{result=\"ok\"}}[{window}])) or vector(0)",
        "supernodes": "sum(peer_role{role=\"supernode\"}) or vector(0)",
        "clients_per_supernode_mean":
            "sum(supernode_children) / sum(peer_role{role=\"supernode\"} > 0)",
        "clients_per_supernode_max": "max(supernode_children * on(instance) "
                                     "(peer_role{role=\"supernode\"} > 0))",
        "hosts_down": "count(testbed_node_up == 0) or vector(0)",
        "calls_failed": 'sum(peer_calls_failed_total{side="caller"}) or vector(0)',
        "sn_joins_per_s": f"sum(rate(supernode_joins_total[{window}])) or vector(0)",
        # every byte leaving a lab interface: the calibration table's signalling traffic
        "signalling_bytes_per_s":
            f"sum(rate(testbed_link_tx_bytes_total[{window}])) or vector(0)",
    }


class RangeQuerier(Protocol):
    def query_range(self, promql: str, start: float, end: float, step: float
                    ) -> list[dict[str, Any]]: ...


def fetch_series(prometheus: RangeQuerier, queries: dict[str, str], start_unix: float,
                 end_unix: float, step: float) -> dict[str, Series]:
    """Each query over [start, end] as (t since start, value); NaN samples are skipped."""
    found: dict[str, Series] = {}
    for name, promql in queries.items():
        points: Series = []
        for result in prometheus.query_range(promql, start_unix, end_unix, step):
            for stamp, text in result["values"]:
                value = float(text)
                if not math.isnan(value) and not math.isinf(value):
                    points.append((round(float(stamp) - start_unix, 3), value))
        found[name] = sorted(points)
    return found


def write_series_csv(series: dict[str, Series], path: Path) -> None:
    with open(path, "w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["t", "series", "value"])
        for name, points in series.items():
            for t, value in points:
                writer.writerow([f"{t:g}", name, f"{value:.6g}"])


@dataclass(frozen=True)
class Trigger:
    start: float  # the first host going down
    end: float  # the last host going down


def _first_at_or_above(points: Iterable[tuple[float, float]], level: float, after: float
                       ) -> float | None:
    for t, value in points:
        if t >= after and value >= level - 1e-9:
            return t
    return None


def summarize(series: dict[str, Series], trigger: Trigger | None,
              needed_login: int | None, complete: bool) -> dict[str, Any]:
    """Outcome metrics: how deep the dip went, how long it took to recover, how hard
    clients hammered the login path (CALIBRATION.md's list)."""
    online = series.get("online_fraction", [])
    start = trigger.start if trigger else 0.0
    after = [(t, v) for t, v in online if t >= start]
    low_t, low = min(after, key=lambda p: p[1]) if after else (None, None)

    def recovery(level: float) -> float | None:
        if low_t is None:
            return None
        back = _first_at_or_above(after, level, low_t)
        return None if back is None else round(back - start, 1)

    def peak(name: str) -> float:
        return round(max((v for _, v in series.get(name, [])), default=0.0), 2)

    attempts = _integral(series.get("login_server_requests_per_s", []), start)
    supernodes = [v for t, v in series.get("supernodes", []) if t >= start]
    calls_failed = series.get("calls_failed", [])
    return {
        "min_online_fraction": None if low is None else round(low, 4),
        "time_of_min_s": low_t,
        "time_to_90_s": recovery(0.90),
        "time_to_95_s": recovery(0.95),
        "final_online_fraction": round(online[-1][1], 4) if online else None,
        "peak_login_attempts_per_s": peak("login_attempts_per_s"),
        "peak_login_server_requests_per_s": peak("login_server_requests_per_s"),
        "login_server_requests_after_trigger": round(attempts, 1),
        "clients_needing_login": needed_login,
        "amplification": round(attempts / needed_login, 2) if needed_login else None,
        "supernodes_low": min(supernodes) if supernodes else None,
        "calls_failed": calls_failed[-1][1] if calls_failed else 0.0,
        "trigger_start_s": trigger.start if trigger else None,
        "complete": complete,
    }


def _integral(points: Series, after: float) -> float:
    """Area under a per-second rate from `after` on: the number of events."""
    total = 0.0
    for (t0, v0), (t1, v1) in zip(points, points[1:], strict=False):
        if t0 >= after:
            total += (t1 - t0) * (v0 + v1) / 2
    return total


def needing_login(per_node: dict[str, Series], start: float, end: float,
                  step: float) -> int:
    """Peers that were offline at some point after `start`: logged_in 0, or no sample at
    all (the host was down, or its process not answering)."""
    count = 0
    expected = max(1, int((end - start) / step) - 1)
    for points in per_node.values():
        after = [v for t, v in points if t >= start]
        if len(after) < expected or any(v < 0.5 for v in after):
            count += 1
    return count
