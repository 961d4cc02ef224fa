"""The out-of-band management network, planned as shards that stay far below the limits
a single Linux bridge runs into.

One bridge for every node fails twice at scale: a bridge takes at most 1,023 ports
("Exchange full"), and an ARP broadcast flooded to ~1,000 ports overflows the kernel's
receive backlog (net.core.netdev_max_backlog), so the oldest ports never answer and
Prometheus silently cannot scrape them. So the mgmt namespace holds one bridge per
SHARD_PORTS nodes, each shard its own /24 with the mgmt namespace's address on it as the
gateway: Prometheus (in the mgmt namespace) reaches every shard directly, a broadcast
reaches at most SHARD_PORTS ports, and since the mgmt namespace never forwards
(ip_forward stays 0) and every port is isolated, no node reaches another through it.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

SHARD_PORTS = 250  # nodes per management bridge: a /24 less gateway, broadcast, spare
SHARD_PREFIX = 24


@dataclass(frozen=True)
class MgmtShard:
    """One management bridge in the mgmt namespace and the gateway address it carries."""

    bridge: str
    address: str  # CIDR of the mgmt namespace's side, e.g. 100.127.3.1/24


class MgmtAllocator:
    """Hands out (shard, node address) in order; raises ValueError when the pool is full."""

    def __init__(self, pool: str) -> None:
        net = ipaddress.IPv4Network(pool)
        prefix = max(net.prefixlen, SHARD_PREFIX)
        self._subnets = net.subnets(new_prefix=prefix)
        self.shards: list[MgmtShard] = []
        self._hosts: list[ipaddress.IPv4Address] = []
        self._prefix = prefix

    def next(self) -> tuple[MgmtShard, str]:
        if not self._hosts:
            self._open_shard()
        return self.shards[-1], f"{self._hosts.pop(0)}/{self._prefix}"

    def hub(self) -> MgmtShard:
        """The first shard's gateway: where Prometheus and the exporter listen."""
        if not self.shards:
            self._open_shard()
        return self.shards[0]

    def _open_shard(self) -> None:
        try:
            subnet = next(self._subnets)
        except StopIteration:
            raise ValueError("full") from None
        hosts = list(subnet.hosts())
        if len(hosts) < 2:
            raise ValueError("full")
        shard = MgmtShard(f"mbr{len(self.shards)}", f"{hosts[0]}/{subnet.prefixlen}")
        self.shards.append(shard)
        self._hosts = hosts[1:1 + SHARD_PORTS]
