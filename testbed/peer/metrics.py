"""Prometheus metrics of one peer process, in its own registry (no global state).

Served on the node's management address only (by the peer's control endpoint), so
scrapes never cross the emulated network. Names are shared by every role; a label or
the `role` gauge tells them apart.
"""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

ROLES = ("client", "supernode", "login")


class PeerMetrics:
    def __init__(self, node: str) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.role = Gauge("peer_role", "1 for the role this process plays now", ["role"],
                          registry=r)
        self.logged_in = Gauge("peer_logged_in", "1 while logged in and attached to a SN",
                               registry=r)
        self.login_attempts = Counter("peer_login_attempts_total",
                                      "login attempts made (client side)", ["transport"],
                                      registry=r)
        self.login_successes = Counter("peer_login_successes_total", "logins completed",
                                       registry=r)
        self.login_failures = Counter("peer_login_failures_total", "login attempts failed",
                                      ["reason"], registry=r)
        self.login_latency = Histogram(
            "peer_login_latency_seconds", "from first attempt to logged in",
            buckets=(0.1, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600), registry=r)
        self.server_requests = Counter("login_server_requests_total",
                                       "login requests seen by the login server",
                                       ["result"], registry=r)
        self.server_queue = Gauge("login_server_queue_length", "requests waiting",
                                  registry=r)
        self.sn_children = Gauge("supernode_children", "clients attached to this SN",
                                 registry=r)
        self.sn_joins = Counter("supernode_joins_total", "join requests at this SN",
                                ["result"], registry=r)
        self.lookups = Counter("peer_lookups_total", "buddy lookups", ["result"], registry=r)
        # side: caller (each call counted once, where it was placed), callee, or supernode
        # (signalling it could not forward)
        self.calls = Counter("peer_calls_total", "calls set up", ["path", "side"], registry=r)
        self.calls_failed = Counter("peer_calls_failed_total", "calls that failed",
                                    ["reason", "side"], registry=r)
        self.relayed_bytes = Counter("supernode_relayed_bytes_total", "media bytes relayed",
                                     registry=r)
        self.host_cache = Gauge("peer_host_cache_entries", "supernodes in the host cache",
                                registry=r)
        self.protocol_errors = Counter("peer_protocol_errors_total",
                                       "frames dropped as malformed, replayed, ...",
                                       ["reason"], registry=r)
        self.connections_refused = Counter(
            "peer_connections_refused_total", "TCP connections closed at once by a cap",
            ["reason"], registry=r)
        self.open_connections = Gauge("peer_open_connections",
                                      "accepted TCP connections open now", registry=r)
        self.start_time = Gauge("peer_process_start_time_seconds",
                                "unix time the process started", registry=r)
        self.info = Gauge("peer_info", "constant 1 with the node name", ["node"], registry=r)
        self.start_time.set(time.time())
        self.info.labels(node=node).set(1)

    def set_role(self, role: str) -> None:
        for name in ROLES:
            self.role.labels(role=name).set(1 if name == role else 0)

    def exposition(self) -> str:
        """The Prometheus text format of this process's metrics."""
        return generate_latest(self.registry).decode()
