"""What an expectation does with a pcap's packets: a matcher, a BPF superset of it for
tcpdump's pre-filter, and a tally (counts, bytes, per-interval bins, violations).

The matcher is one closure per expectation that tests only what was asked (a `None`
test on a captured constant is cheap): it runs for every packet of the pcap, so it is the
part of `testbed check` whose speed matters.
"""

from __future__ import annotations

import ipaddress
import math
from dataclasses import dataclass

from testbed.capture.model import PROTOCOLS
from testbed.capture.pcapscan import NOT_IP, Match, Sink
from testbed.capture.resolve import Bound

MAX_BPF_HOSTS = 64  # longer host lists are left to the Python matcher (BPF stays small)


@dataclass(frozen=True)
class Filter:
    """The packet filter of one direction: sets of packed addresses, protocol, ports."""

    sources: frozenset[bytes] | None = None
    destinations: frozenset[bytes] | None = None
    proto: int | None = None
    port: int | None = None
    src_port: int | None = None
    mask: int = 0
    value: int = 0

    def reversed(self) -> Filter:
        return Filter(self.destinations, self.sources, self.proto, self.src_port, self.port,
                      self.mask, self.value)

    def is_everything(self) -> bool:
        return self == Filter()


def filter_of(bound: Bound, sources_key: str = "from") -> Filter:
    spec = bound.expectation.spec
    return Filter(bound.addresses.get(sources_key), bound.addresses.get("to"),
                  PROTOCOLS[spec.proto] if spec.proto else None, spec.port, spec.src_port,
                  bound.expectation.flags_mask, bound.expectation.flags_value)


def compile_match(f: Filter) -> Match | None:
    """A closure testing exactly the conditions of `f`; None when it accepts every frame."""
    if f.is_everything():
        return None
    sources, destinations, proto = f.sources, f.destinations, f.proto
    port, src_port, mask, value = f.port, f.src_port, f.mask, f.value
    needs_ip = proto is None

    def match(src: bytes, dst: bytes, p: int, sport: int, dport: int, flags: int) -> bool:
        if needs_ip and p == NOT_IP:
            return False
        if proto is not None and p != proto:
            return False
        if sources is not None and src not in sources:
            return False
        if destinations is not None and dst not in destinations:
            return False
        if port is not None and dport != port:
            return False
        if src_port is not None and sport != src_port:
            return False
        return not mask or (flags != NOT_IP and flags & mask == value)

    return match


def either(a: Match | None, b: Match | None) -> Match | None:
    if a is None or b is None:
        return None

    def match(src: bytes, dst: bytes, p: int, sport: int, dport: int, flags: int) -> bool:
        return a(src, dst, p, sport, dport, flags) or b(src, dst, p, sport, dport, flags)

    return match


def bpf_of(f: Filter) -> str | None:
    """The BPF expression of `f` (a superset when host lists are long); None: everything."""
    if f.is_everything():
        return None
    names = {1: "icmp", 6: "tcp", 17: "udp"}
    parts = [names[f.proto] if f.proto is not None else "ip"]
    for direction, hosts in (("src", f.sources), ("dst", f.destinations)):
        if hosts is not None and len(hosts) <= MAX_BPF_HOSTS:
            addresses = sorted(str(ipaddress.IPv4Address(h)) for h in hosts)
            parts.append("(" + " or ".join(f"{direction} host {a}" for a in addresses) + ")")
    if f.port is not None:
        parts.append(f"dst port {f.port}")
    if f.src_port is not None:
        parts.append(f"src port {f.src_port}")
    if f.mask:
        parts.append(f"tcp[tcpflags] & {f.mask:#04x} == {f.value:#04x}")
    return " and ".join(parts)


Example = tuple[float, bytes, bytes, int, int, int]  # ts, src, dst, proto, sport, dport


class Tally:
    """Packets and bytes inside the window, optionally in fixed-width bins from `origin`
    (memory grows with the window's length / interval, never with the packet count)."""

    def __init__(self, bound: Bound, interval: float | None = None) -> None:
        self.start, self.end = bound.start, bound.end
        self.origin = bound.start if not math.isinf(bound.start) else bound.origin
        self.interval = interval
        self.packets = 0
        self.bytes = 0
        self.first: Example | None = None
        self.bin_packets: dict[int, int] = {}
        self.bin_bytes: dict[int, int] = {}

    def add(self, ts: float, length: int, src: bytes, dst: bytes, proto: int, sport: int,
            dport: int) -> None:
        if ts < self.start or ts >= self.end:
            return
        self.packets += 1
        self.bytes += length
        if self.first is None:
            self.first = (ts, src, dst, proto, sport, dport)
        if self.interval:
            key = int((ts - self.origin) // self.interval)
            self.bin_packets[key] = self.bin_packets.get(key, 0) + 1
            self.bin_bytes[key] = self.bin_bytes.get(key, 0) + length

    def busiest(self, by_bytes: bool) -> tuple[int, int] | None:
        """(bin, value) of the fullest bin."""
        bins = self.bin_bytes if by_bytes else self.bin_packets
        return max(bins.items(), key=lambda kv: (kv[1], -kv[0])) if bins else None


class ViaTally:
    """Packets from the sources, and those not addressed to a `through` node."""

    def __init__(self, bound: Bound) -> None:
        self.start, self.end = bound.start, bound.end
        self.through = bound.addresses["through"]
        self.packets = 0
        self.violations = 0
        self.first: Example | None = None
        self.destinations: dict[bytes, int] = {}  # where the violations went (bounded)

    def add(self, ts: float, length: int, src: bytes, dst: bytes, proto: int, sport: int,
            dport: int) -> None:
        if ts < self.start or ts >= self.end:
            return
        self.packets += 1
        if dst not in self.through:
            self.violations += 1
            if self.first is None:
                self.first = (ts, src, dst, proto, sport, dport)
            if dst in self.destinations or len(self.destinations) < 50:
                self.destinations[dst] = self.destinations.get(dst, 0) + 1


Flow = tuple[bytes, bytes]  # (source, destination) addresses


class OrderTally:
    """Per flow, whether its first packet whose payload begins with `then` came after one
    beginning with `first` (e.g. each phone's 200 OK after its 401 challenge)."""

    def __init__(self, bound: Bound) -> None:
        self.start, self.end = bound.start, bound.end
        spec = bound.expectation.spec
        self.first_text = (spec.first or "").encode()
        self.then_text = (spec.then or "").encode()
        self.packets = 0
        self.seen_first: dict[Flow, float] = {}
        self.ordered: dict[Flow, tuple[float, float]] = {}  # flow -> (first, then) times
        self.unordered: dict[Flow, Example] = {}  # flow -> its `then` with none before

    def add(self, ts: float, length: int, src: bytes, dst: bytes, proto: int, sport: int,
            dport: int) -> None:
        self.add_payload(ts, length, src, dst, proto, sport, dport, b"")

    def add_payload(self, ts: float, length: int, src: bytes, dst: bytes, proto: int,
                    sport: int, dport: int, payload: bytes) -> None:
        if ts < self.start or ts >= self.end:
            return
        self.packets += 1
        flow = (src, dst)
        if payload.startswith(self.first_text):
            self.seen_first.setdefault(flow, ts)
        elif payload.startswith(self.then_text) and flow not in self.ordered \
                and flow not in self.unordered:
            if flow in self.seen_first:
                self.ordered[flow] = (self.seen_first[flow], ts)
            else:
                self.unordered[flow] = (ts, src, dst, proto, sport, dport)


def make_sink(bound: Bound) -> tuple[Sink, Tally | ViaTally | OrderTally]:
    """The sink and tally for a pcap expectation (every check except promql)."""
    check = bound.expectation.check
    spec = bound.expectation.spec
    if check == "order":
        order = OrderTally(bound)
        f = filter_of(bound)
        return Sink(compile_match(f), order.add, bpf_of(f), order.add_payload), order
    if check == "via":
        through = bound.addresses["through"]
        f = filter_of(bound)
        assert f.sources is not None
        f = Filter(f.sources - through, f.destinations, f.proto, f.port, f.src_port,
                   f.mask, f.value)
        via = ViaTally(bound)
        return Sink(compile_match(f), via.add, bpf_of(f)), via
    interval = (spec.interval or 1.0) if check in ("link_rate", "peak_rate") else None
    tally = Tally(bound, interval)
    f = filter_of(bound)
    match, bpf = compile_match(f), bpf_of(f)
    if spec.both_ways and not f.is_everything():
        back = f.reversed()
        match = either(match, compile_match(back))
        bpf = f"({bpf}) or ({bpf_of(back)})"
    return Sink(match, tally.add, bpf), tally
