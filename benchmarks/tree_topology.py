"""The "tree-N" benchmark topology, shared by our side of the build benchmark.

Same shape as benchmarks/stock_mininet.py builds with stock Mininet: one core switch c1,
E = ceil(N/50) edge switches e1..eE linked to c1, host j linked to e((j-1)//50 + 1), and
10 Mbit/s on every link (HTB on both ends).
"""

from __future__ import annotations

import math


def tree_yaml(hosts: int, name: str = "bench") -> str:
    edges = math.ceil(hosts / 50)
    return "\n".join([
        f"name: {name}",
        "nodes:",
        "  c1: {kind: switch}",
        "  e{n}:",
        f"    count: {edges}",
        "    kind: switch",
        "    uplink: {to: c1, bandwidth: 10Mbit}",
        "  h{n}:",
        f"    count: {hosts}",
        "    kind: host",
        '    uplink: {to: "e{(n - 1) // 50 + 1}", bandwidth: 10Mbit}',
        "",
    ])
