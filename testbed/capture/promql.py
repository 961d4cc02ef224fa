"""`check: promql`: a PromQL expression over a window of the run, against a bound.

The run's Prometheus stops when the run ends; its TSDB snapshot can be reopened with
`testbed results serve RUN`, whose URL `testbed check --prometheus URL` then uses. With no
Prometheus at all the expectation is an error ("not evaluated"), never a pass.
"""

from __future__ import annotations

import contextlib
import json
import math
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from testbed.capture.resolve import Bound
from testbed.capture.verdict import Verdict, format_bound

TIMEOUT = 15.0


def query_range(url: str, query: str, start: float, end: float, step: float
                ) -> list[dict[str, Any]]:
    params = urllib.parse.urlencode({"query": query, "start": f"{start:.3f}",
                                     "end": f"{end:.3f}", "step": f"{step:g}"})
    target = f"{url.rstrip('/')}/api/v1/query_range?{params}"
    try:
        with urllib.request.urlopen(target, timeout=TIMEOUT) as response:
            body = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace")
        with contextlib.suppress(json.JSONDecodeError):
            detail = json.loads(detail).get("error", detail)
        raise ValueError(f"Prometheus rejected the query: {detail}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ConnectionError(f"cannot reach Prometheus at {url} ({reason}); the run's "
                              "Prometheus stops with the run: reopen its data with "
                              "`testbed results serve RUN` and pass --prometheus "
                              "http://127.0.0.1:9090") from None
    if body.get("status") != "success":
        raise ValueError(f"Prometheus: {body.get('error', body)}")
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def evaluate(bound: Bound, url: str | None, run_info: dict[str, Any]) -> Verdict:
    e = bound.expectation
    verdict = Verdict(e.name, e.check, e.where, "error", bound=format_bound(e.low, e.high),
                      window=bound.window_text())
    if not url:
        verdict.detail = "not evaluated: no Prometheus data (run.json has no prometheus_url)"
        return verdict
    verdict.sources = [url]
    start, end = bound.start, bound.end
    if math.isinf(end) and run_info.get("duration_s"):
        end = bound.origin + float(run_info["duration_s"])
    if math.isinf(start):
        start = bound.origin
    if math.isinf(end) or not bound.origin:
        verdict.detail = ("not evaluated: the run's time range is unknown (run.json has no "
                          "started_unix/duration_s); give window: [start, end]")
        return verdict
    step = e.spec.step or float(run_info.get("scrape_interval_s") or 1.0)
    assert e.spec.query is not None
    try:
        series = query_range(url, e.spec.query, start, end, step)
    except (ValueError, ConnectionError) as exc:
        verdict.detail = f"not evaluated: {exc}"
        return verdict
    samples = [(s.get("metric", {}), float(t), float(v)) for s in series
               for t, v in s.get("values", []) if not math.isnan(float(v))]
    if not samples:
        verdict.status = "vacuous"
        verdict.detail = "the query returned no samples in the window"
        return verdict
    observed, when = _reduce(e.spec.reduce or "worst", samples, e.low, e.high)
    verdict.observed = observed
    ok = (e.low is None or observed >= e.low) and (e.high is None or observed <= e.high)
    verdict.status = "pass" if ok else "fail"
    if when is not None:
        metric, at = when
        labels = ",".join(f'{k}="{v}"' for k, v in sorted(metric.items()))
        verdict.detail = f"at t={at - bound.origin:.1f}s{' {' + labels + '}' if labels else ''}"
    verdict.notes.append(f"{len(samples)} samples from {len(series)} series, step {step:g}s")
    return verdict


def _reduce(how: str, samples: list[tuple[dict[str, str], float, float]],
            low: float | None, high: float | None
            ) -> tuple[float, tuple[dict[str, str], float] | None]:
    """The value compared with the bound, and where it came from (worst/last only)."""
    if how == "mean":
        return sum(v for _, _, v in samples) / len(samples), None
    if how == "last":
        metric, t, v = max(samples, key=lambda s: s[1])
        return v, (metric, t)
    # worst: the sample furthest outside (or closest to) the bound
    def badness(sample: tuple[dict[str, str], float, float]) -> float:
        v = sample[2]
        return max(v - high if high is not None else -math.inf,
                   low - v if low is not None else -math.inf)

    metric, t, v = max(samples, key=badness)
    return v, (metric, t)
