"""Evaluating expectations over a run: each pcap is read once for all the expectations
that use it, then every expectation gets a verdict (in the order it was written).

Vacuous results are reported as such: an expectation that counts packets and would pass
on zero matched packets (a max bound, `via`, `link_rate`) says so instead of passing.
`no_packets` is the exception: zero is what it asks for.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from pathlib import Path

from testbed.capture import promql
from testbed.capture.expectations import Expectation
from testbed.capture.pcapscan import Sink, scan
from testbed.capture.resolve import BindError, Bound, bind, load_run
from testbed.capture.sinks import Example, OrderTally, Tally, ViaTally, make_sink
from testbed.capture.verdict import Verdict, format_bound, format_value
from testbed.errors import CaptureError

PROTO_NAMES = {1: "icmp", 6: "tcp", 17: "udp"}


def check_run(run_dir: str | Path, expectations: Sequence[Expectation],
              prometheus_url: str | None = None, prefilter: bool = True) -> list[Verdict]:
    """Verdicts for every expectation; `prometheus_url` overrides run.json's."""
    run = load_run(run_dir)
    url = prometheus_url or run.info.get("prometheus_url")
    verdicts: list[Verdict | None] = [None] * len(expectations)
    pending: list[tuple[int, Bound, Tally | ViaTally | OrderTally]] = []
    per_pcap: dict[Path, list[Sink]] = {}
    for i, expectation in enumerate(expectations):
        try:
            bound = bind(expectation, run)
        except BindError as exc:
            verdicts[i] = _error(expectation, str(exc))
            continue
        if expectation.check == "promql":
            verdicts[i] = promql.evaluate(bound, url, run.info)
            continue
        sink, tally = make_sink(bound)
        for capture in bound.captures:
            per_pcap.setdefault(capture.path, []).append(sink)
        pending.append((i, bound, tally))
    failed: dict[Path, str] = {}
    for path, sinks in per_pcap.items():
        try:
            scan(path, sinks, prefilter=prefilter)
        except CaptureError as exc:
            failed[path] = str(exc)
    for i, bound, tally in pending:
        broken = [failed[c.path] for c in bound.captures if c.path in failed]
        if broken:
            verdicts[i] = _error(bound.expectation, "; ".join(broken), bound)
        else:
            verdicts[i] = judge(bound, tally, run.owners(c.node for c in bound.captures))
    return [v for v in verdicts if v is not None]


def _error(expectation: Expectation, message: str, bound: Bound | None = None) -> Verdict:
    verdict = Verdict(expectation.name, expectation.check, expectation.where, "error",
                      detail=message)
    if bound is not None:
        verdict.sources = [c.file for c in bound.captures]
        verdict.window = bound.window_text()
    return verdict


def judge(bound: Bound, tally: Tally | ViaTally | OrderTally, owners: dict[bytes, str]
          ) -> Verdict:
    e = bound.expectation
    verdict = Verdict(e.name, e.check, e.where, "pass",
                      sources=[c.file for c in bound.captures], window=bound.window_text())
    for capture in bound.captures:
        if capture.dropped:
            verdict.notes.append(f"capture {capture.name} dropped {capture.dropped} packets "
                                 "(reported by tcpdump): counts are lower bounds")
    if isinstance(tally, ViaTally):
        return _via(verdict, bound, tally, owners)
    if isinstance(tally, OrderTally):
        return _order(verdict, bound, tally, owners)
    if e.check == "link_rate":
        return _link_rate(verdict, bound, tally)
    if e.check == "peak_rate":
        return _peak_rate(verdict, bound, tally)
    return _count(verdict, bound, tally, owners)


def _within(verdict: Verdict, value: float, low: float | None, high: float | None) -> None:
    verdict.observed = value
    verdict.bound = verdict.bound or format_bound(low, high, verdict.unit)
    ok = (low is None or value >= low) and (high is None or value <= high)
    verdict.status = "pass" if ok else "fail"


def _count(verdict: Verdict, bound: Bound, tally: Tally, owners: dict[bytes, str]
           ) -> Verdict:
    e = bound.expectation
    measure = e.measure
    verdict.unit = measure
    if measure in ("packets", "bytes"):
        value = float(tally.packets if measure == "packets" else tally.bytes)
    else:
        span = bound.span()
        if not span:
            verdict.status = "error"
            verdict.detail = ("cannot compute a rate: the window is open and the capture "
                              "index has no start/stop times; give window: [start, end]")
            return verdict
        value = (tally.packets if measure == "packets/s" else tally.bytes * 8) / span
        verdict.notes.append(f"{tally.packets} packets over {span:.1f}s")
    if e.check == "no_packets":
        verdict.bound = "no packet"
    _within(verdict, value, e.low, e.high)
    if tally.first is not None:
        verdict.detail = f"first match: {describe(tally.first, bound.origin, owners)}"
    if tally.packets == 0 and e.check != "no_packets":
        if verdict.status == "pass":
            verdict.status = "vacuous"
            verdict.detail = ("0 packets matched, so the bound holds only vacuously: check "
                              "from/to, proto/port/flags, the window and the capture")
        else:
            verdict.detail = ("0 packets matched: check from/to, proto/port/flags, the window "
                              "and the capture")
    elif verdict.status == "fail" and e.check == "no_packets":
        verdict.detail = (f"{tally.packets} packets matched; first: "
                          f"{describe(tally.first, bound.origin, owners)}"
                          if tally.first else "")
    return verdict


def _via(verdict: Verdict, bound: Bound, tally: ViaTally, owners: dict[bytes, str]
         ) -> Verdict:
    verdict.unit = "packets"
    verdict.bound = f"0 addressed elsewhere than {', '.join(bound.nodes['through'])}"
    _within(verdict, float(tally.violations), None, 0.0)
    if tally.packets == 0:
        verdict.status = "vacuous"
        verdict.detail = ("no packet from `from` matched in the window, so nothing shows "
                          "the traffic crossed the through node: check from/to/port and "
                          "the capture")
    elif tally.violations:
        top = sorted(tally.destinations.items(), key=lambda kv: -kv[1])[:5]
        where = ", ".join(f"{_addr(d, owners)} x{n}" for d, n in top)
        assert tally.first is not None
        verdict.detail = (f"{tally.violations} of {tally.packets} packets went elsewhere: "
                          f"{where}; first: {describe(tally.first, bound.origin, owners)}")
    else:
        verdict.detail = f"all {tally.packets} packets were addressed to it"
    return verdict


def _order(verdict: Verdict, bound: Bound, tally: OrderTally, owners: dict[bytes, str]
           ) -> Verdict:
    e = bound.expectation
    first, then = e.spec.first, e.spec.then
    verdict.unit = "flows"
    low = 1.0 if e.low is None else e.low
    verdict.bound = f">= {low:g} flows with {first!r} before {then!r}, none without"
    verdict.observed = float(len(tally.ordered))
    ok = len(tally.ordered) >= low and not tally.unordered
    verdict.status = "pass" if ok else "fail"
    if tally.unordered:
        flow, example = next(iter(tally.unordered.items()))
        verdict.detail = (f"{len(tally.unordered)} flows got {then!r} with no {first!r} "
                          f"before it; first: {describe(example, bound.origin, owners)}")
    elif tally.ordered:
        (src, dst), (was, then_at) = next(iter(tally.ordered.items()))
        verdict.detail = (f"{len(tally.ordered)} flows in order, e.g. {_addr(src, owners)} -> "
                          f"{_addr(dst, owners)}: {first!r} at t={was - bound.origin:.3f}s, "
                          f"{then!r} at t={then_at - bound.origin:.3f}s")
    else:
        verdict.detail = (f"no packet beginning with {then!r} among the {tally.packets} "
                          "matched: check from/to, proto/port, the window, the capture "
                          "(and its snaplen)")
    return verdict


def _link_rate(verdict: Verdict, bound: Bound, tally: Tally) -> Verdict:
    e = bound.expectation
    interval = tally.interval or 1.0
    assert e.spec.limit is not None
    tolerance = 0.05 if e.spec.tolerance is None else e.spec.tolerance
    limit = e.spec.limit * (1 + tolerance)
    verdict.unit = "bits/s"
    verdict.bound = (f"<= {format_value(limit, 'bits/s')} (limit "
                     f"{format_value(e.spec.limit, 'bits/s')} + {tolerance:.0%})")
    busiest = tally.busiest(by_bytes=True)
    if busiest is None:
        verdict.status = "vacuous"
        verdict.observed = 0.0
        verdict.detail = "0 packets in the window, so the limit holds only vacuously"
        return verdict
    key, value = busiest
    _within(verdict, value * 8 / interval, None, limit)
    verdict.detail = (f"busiest interval: {_bin_text(tally, key, bound.origin)} ({value} "
                      f"bytes; {tally.packets} packets in the window)")
    return verdict


def _peak_rate(verdict: Verdict, bound: Bound, tally: Tally) -> Verdict:
    e = bound.expectation
    interval = tally.interval or 1.0
    verdict.unit = "packets/s"
    busiest = tally.busiest(by_bytes=False)
    if busiest is None:
        _within(verdict, 0.0, e.low, None)
        verdict.detail = ("0 packets matched: check from/to, proto/port/flags, the window "
                          "and the capture")
        return verdict
    key, value = busiest
    _within(verdict, value / interval, e.low, None)
    verdict.detail = (f"busiest interval: {_bin_text(tally, key, bound.origin)} "
                      f"({value} packets; {tally.packets} in the window)")
    return verdict


def _bin_text(tally: Tally, key: int, origin: float) -> str:
    interval = tally.interval or 1.0
    start = tally.origin + key * interval - origin
    return f"t={start:g}s..{start + interval:g}s"


def _addr(packed: bytes, owners: dict[bytes, str], port: int = -1) -> str:
    text = str(ipaddress.IPv4Address(packed)) if len(packed) == 4 else "non-IP"
    if port >= 0:
        text = f"{text}:{port}"
    return f"{text} ({owners[packed]})" if packed in owners else text


def describe(example: Example, origin: float, owners: dict[bytes, str]) -> str:
    """One packet as a person reads it: when, who to whom, protocol and ports."""
    ts, src, dst, proto, sport, dport = example
    when = f"t={ts - origin:.3f}s"
    if proto < 0:
        return f"{when} non-IPv4 frame"
    name = PROTO_NAMES.get(proto, f"proto {proto}")
    return f"{when} {_addr(src, owners, sport)} -> {_addr(dst, owners, dport)} {name}"
