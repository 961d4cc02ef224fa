"""Configs of the CDN's processes, from the plan (pure data, unit-tested without a lab).

The origin, the tracker and the PCs find each other here: every PC's config names the
tracker's announce URL and the origin's base URL, by address, as a Kontiki client was
configured with its vendor's servers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from testbed.p2p.catalogue import preloaded, requests_of
from testbed.topology.cdn import BitTorrentSettings, OriginSettings

if TYPE_CHECKING:
    from testbed.plan.model import NetworkPlan, PlannedNode

METRICS_PORT = 9100  # every CDN node's exporter, on its management address
TRACKER_PORT = 6969


def _single(plan: NetworkPlan, kind: str) -> PlannedNode | None:
    found = sorted((n for n in plan.nodes.values() if n.kind == kind), key=lambda n: n.name)
    return found[0] if found else None


def origin_url(plan: NetworkPlan) -> str:
    origin = _single(plan, "origin")
    if origin is None:
        return ""
    port = (origin.node.origin or OriginSettings()).port
    return f"http://{origin.primary_address()}" + ("" if port == 80 else f":{port}")


def announce_url(plan: NetworkPlan) -> str:
    """UDP (BEP 15): libtorrent announces from its listen socket, the one uTP uses, so an
    announce opens a PC's cone NAT for the peers the tracker hands out, as Kontiki's
    own NAT traversal did."""
    tracker = _single(plan, "tracker")
    return f"udp://{tracker.primary_address()}:{TRACKER_PORT}/announce" if tracker else ""


def origin_settings(plan: NetworkPlan) -> OriginSettings:
    origin = _single(plan, "origin")
    return (origin.node.origin if origin else None) or OriginSettings()


def mgmt(node: PlannedNode) -> str:
    return (node.mgmt_address or "").split("/")[0]


def origin_config(node: PlannedNode, plan: NetworkPlan) -> dict[str, Any]:
    settings = node.node.origin or OriginSettings()
    return {"node": node.name, "seed": settings.seed, "episodes": settings.episodes,
            "size": settings.size, "piece_size": settings.piece_size,
            "port": settings.port, "announce": announce_url(plan),
            "base_url": origin_url(plan), "mgmt_address": mgmt(node),
            "metrics_port": METRICS_PORT}


def bt_peers(plan: NetworkPlan) -> list[str]:
    return sorted(n.name for n in plan.nodes.values() if n.kind == "bt_peer")


def peer_config(node: PlannedNode, plan: NetworkPlan) -> dict[str, Any]:
    bt = node.node.bittorrent or BitTorrentSettings()
    origin = origin_settings(plan)
    names = bt_peers(plan)
    position = names.index(node.name) if node.name in names else 0
    return {
        "node": node.name, "address": node.primary_address() or "",
        "mgmt_address": mgmt(node), "metrics_port": METRICS_PORT, "port": bt.port,
        "origin": origin_url(plan), "announce": announce_url(plan),
        "seed": origin.seed, "episodes": origin.episodes, "size": origin.size,
        "piece_size": origin.piece_size,
        "requests": [[r.at, r.episode] for r in requests_of(position + 1, bt, origin)],
        "preload": node.name in preloaded(names, bt.preload, origin.seed),
        "upload_rate": bt.upload_rate, "stall_after": bt.stall_after,
        "give_up": bt.give_up, "fallback_below": bt.fallback_below,
    }
