"""What a capture keeps and when it stops: the part of a capture declaration shared by
topology files (`capture:` on a link), scenario files (`captures:`) and `testbed capture`.

A leaf module (no testbed imports), so the topology model can use it without importing
the capture machinery. Field metadata follows the topology model's conventions (`doc`,
`unit`, `min`/`max`), so the loader and the JSON Schema read it the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class CaptureOptions:
    """BPF filter, snap length and caps of one tcpdump."""

    filter: str = field(default="", metadata={"doc": "BPF filter, e.g. 'tcp port 443'"})
    snaplen: int = field(default=256, metadata={"doc": "bytes kept of each packet",
                                                "min": 64, "max": 262144})
    max_packets: int | None = field(default=None, metadata={
        "doc": "stop after this many packets", "min": 1})
    max_seconds: float | None = field(default=None, metadata={
        "doc": "stop after this long, e.g. 60s", "unit": "duration"})
    max_megabytes: float | None = field(default=None, metadata={
        "doc": "stop before the pcap exceeds this size (MiB)", "min": 0.01})
    name: str | None = field(default=None, metadata={
        "doc": "name in captures/index.json; default NODE-IFACE"})
