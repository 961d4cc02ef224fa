"""Expectations as written in YAML (`expect:`), as dataclasses.

Like the topology and scenario models, these dataclasses are the one description of the
format: the loader converts YAML into them and reports every mismatch with file:line.
Selectors (`from`, `to`, `through`) are kept as written (a node name or glob, a list of
them, or a mapping of kind/group/labels/names) and checked by the loader, because a
plain union would turn a typo inside the mapping into "expected a string or a list".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from testbed.topology.model import Scalar, doc

CHECKS: tuple[str, ...] = ("packets", "no_packets", "via", "link_rate", "peak_rate",
                           "order", "promql")
Check = Literal["packets", "no_packets", "via", "link_rate", "peak_rate", "order", "promql"]
Measure = Literal["packets", "bytes", "packets/s", "bits/s"]

TCP_FLAGS: dict[str, int] = {"FIN": 0x01, "SYN": 0x02, "RST": 0x04, "PSH": 0x08,
                             "ACK": 0x10, "URG": 0x20, "ECE": 0x40, "CWR": 0x80}
PROTOCOLS: dict[str, int] = {"icmp": 1, "tcp": 6, "udp": 17}

_PACKET_FILTER = ("capture", "from", "to", "proto", "port", "src_port", "flags", "window")

# Which keys each check accepts beyond `check` and `name`, and which it requires.
ALLOWED: dict[str, tuple[str, ...]] = {
    "packets": (*_PACKET_FILTER, "both_ways", "measure", "min", "max"),
    "no_packets": (*_PACKET_FILTER, "both_ways"),
    "via": (*_PACKET_FILTER, "through"),
    "link_rate": (*_PACKET_FILTER, "limit", "tolerance", "interval"),
    "peak_rate": (*_PACKET_FILTER, "interval", "min"),
    "order": (*_PACKET_FILTER, "first", "then", "min"),
    "promql": ("query", "window", "step", "reduce", "min", "max"),
}
REQUIRED: dict[str, tuple[str, ...]] = {
    "via": ("from", "through"),
    "link_rate": ("limit",),
    "peak_rate": ("min",),
    "order": ("first", "then"),
    "promql": ("query",),
}


@dataclass
class SelectorSpec:
    """Nodes of the run's lab, matched against its lab.json; every given key must match."""

    kind: str | list[str] | None = doc("node kind(s), e.g. peer")
    group: str | list[str] | None = doc("group name(s)")
    labels: dict[str, Scalar] | None = doc("labels that must all match, e.g. {sn_capable: true}")
    names: list[str] | None = doc("node names or globs, e.g. home*")


@dataclass
class ExpectSpec:
    """One expectation as written. `from` is a Python keyword, so it is `from_` here."""

    check: Check | None = doc("what to check: packets, no_packets, via, link_rate, peak_rate, "
                              "order, promql")
    name: str | None = doc("shown in the report and as the JUnit test case name")
    capture: str | list[str] | None = doc(
        "capture name(s) from captures/index.json, or NODE, or NODE:IFACE")
    from_: Any = field(default=None, metadata={"doc": "source nodes (selector)", "key": "from"})
    to: Any = doc("destination nodes (selector)")
    through: Any = doc("via: the node(s) every packet from `from` must be addressed to")
    both_ways: bool | None = doc("packets/no_packets: count to->from as well")
    proto: Literal["tcp", "udp", "icmp"] | None = doc("IP protocol")
    port: int | None = doc("destination port (tcp/udp)", min=0, max=65535)
    src_port: int | None = doc("source port (tcp/udp)", min=0, max=65535)
    flags: str | list[str] | None = doc("TCP flags that must be set; !FLAG must be clear, "
                                        "e.g. SYN !ACK")
    window: list[float | str | None] | None = doc(
        "[start, end] seconds since the run's start; end may be null (the end of the "
        "capture)")
    measure: Measure | None = doc("packets: packets (default), bytes, packets/s or bits/s")
    min: float | str | None = doc("lower bound (inclusive)")
    max: float | str | None = doc("upper bound (inclusive)")
    limit: int | None = doc("link_rate: the link's rate, e.g. 512kbit", unit="bandwidth")
    tolerance: float | None = doc("link_rate: allowed excess, default 5%", unit="ratio")
    interval: float | None = doc("link_rate/peak_rate: bin width, default 1s", unit="duration")
    first: str | None = doc("order: how the earlier packet's payload begins, e.g. "
                            "'SIP/2.0 401'")
    then: str | None = doc("order: how the later packet's payload begins; in every flow "
                           "(source, destination) its first such packet must follow a "
                           "`first` one")
    query: str | None = doc("promql: the PromQL expression")
    step: float | None = doc("promql: resolution of the range query, default the run's "
                             "scrape interval", unit="duration")
    reduce: Literal["worst", "last", "mean"] | None = doc(
        "promql: which value is compared: worst sample (default), last, or mean")
