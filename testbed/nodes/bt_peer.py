"""`bt_peer`: a home PC with a Kontiki-like download manager: a real BitTorrent client
(a libtorrent session) that fetches episodes on a request schedule from peers and the
origin's web seed, keeps serving them in the background, and exports its own stats.

Why libtorrent (Debian's python3-libtorrent): its per-peer statistics say which bytes
came from a peer and which from a web seed, which is the CDN's key metric; DHT, local
discovery, PEX, UPnP and NAT-PMP switch off per session and torrent; and the request
process lives in the same small process that drives the session, so there is no RPC
to poll and no second process per PC.
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, ClassVar

from testbed.errors import Problem
from testbed.nodes.base import NodeKind, NodeSetup, ServiceSpec
from testbed.nodes.cdn_checks import one_of, rate_fits
from testbed.p2p.catalogue import worst_case_disk
from testbed.p2p.provision import peer_config
from testbed.topology.cdn import BitTorrentSettings, OriginSettings

if TYPE_CHECKING:
    from testbed.plan.model import NetworkPlan, PlannedNode
    from testbed.topology.model import Node, Topology

CONFIG_NAME = "bt.json"


class BtPeerKind(NodeKind):
    name: ClassVar[str] = "bt_peer"
    description: ClassVar[str] = ("a home PC whose BitTorrent client (libtorrent) fetches "
                                  "episodes from peers and the origin, and serves them")
    sections: ClassVar[frozenset[str]] = frozenset({"bittorrent"})

    def validate(self, node: Node, topology: Topology) -> list[Problem]:
        bt = node.bittorrent or BitTorrentSettings()
        path = f"nodes.{node.name}.bittorrent"
        problems = one_of("origin", node, topology, "the catalogue and web seed") + \
            one_of("tracker", node, topology, "the only rendezvous")
        origins = topology.nodes_of_kind("origin")
        origin = (origins[0].origin if origins else None) or OriginSettings()
        need = worst_case_disk(bt, origin)
        if need > bt.disk:
            problems.append(Problem(
                f"this PC may have to hold {need:,} B of episodes (requests/preload x "
                f"{origin.size:,} B), more than its disk: {bt.disk:,} B", topology.source,
                node.line, f"{path}.disk"))
        problems += rate_fits(node, topology, bt.upload_rate, f"{path}.upload_rate")
        problems += rate_fits(node, topology, bt.fallback_below, f"{path}.fallback_below",
                              "down", ": peers could never deliver that much, so every "
                              "download would fall back to the origin (leave it unset to "
                              "use the web seed from the start)")
        return problems

    def setup(self, node: PlannedNode, plan: NetworkPlan) -> NodeSetup:
        setup = super().setup(node, plan)
        config = peer_config(node, plan)
        setup.files[CONFIG_NAME] = json.dumps(config, indent=1)
        # the episodes it will hold: all when preloaded, else those it asks for
        held = config["episodes"] if config["preload"] else len({e for _, e in
                                                                  config["requests"]})
        setup.disk_bytes = held * config["size"]
        setup.services.append(ServiceSpec("bittorrent", (
            sys.executable, "-m", "testbed.p2p.client", "--config", "{state_dir}/" +
            CONFIG_NAME)))
        return setup
