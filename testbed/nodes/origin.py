"""`origin`: the CDN's HTTP origin, a real lighttpd serving the synthetic catalogue.

Its service first writes the catalogue and the .torrent files into the node's state
directory (once; they survive reboots like a server's disk), then execs lighttpd in the
foreground, so the supervisor owns the web server's own pid. A second service exports
lighttpd's mod_status counters (bytes and requests served) to Prometheus. Egress is
limited by the node's uplink (`up:`), as a hosting contract would.
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, ClassVar

from testbed.errors import Problem
from testbed.nodes.base import NodeKind, NodeSetup, ServiceSpec
from testbed.nodes.cdn_checks import one_of
from testbed.p2p.provision import origin_config
from testbed.topology.cdn import OriginSettings

if TYPE_CHECKING:
    from testbed.plan.model import NetworkPlan, PlannedNode
    from testbed.topology.model import Node, Topology

CONFIG_NAME = "origin.json"
MIN_PIECE = 16 * 1024


class OriginKind(NodeKind):
    name: ClassVar[str] = "origin"
    description: ClassVar[str] = ("a CDN origin: lighttpd serving a synthetic catalogue over "
                                  "HTTP (Range), the BitTorrent web seed")
    sections: ClassVar[frozenset[str]] = frozenset({"origin"})

    def validate(self, node: Node, topology: Topology) -> list[Problem]:
        settings = node.origin or OriginSettings()
        path = f"nodes.{node.name}.origin"
        problems = one_of("tracker", node, topology, "the torrents announce to it")
        piece = settings.piece_size
        if piece < MIN_PIECE or piece & (piece - 1):
            problems.append(Problem(f"piece_size {piece} B: use a power of two of 16KB or "
                                    "more, e.g. 256KB", topology.source, node.line,
                                    f"{path}.piece_size"))
        total = settings.episodes * settings.size
        if total > settings.disk:
            problems.append(Problem(
                f"the catalogue ({settings.episodes} episodes of {settings.size:,} B = "
                f"{total:,} B) does not fit the origin's disk ({settings.disk:,} B); fewer "
                "or smaller episodes, or a bigger disk", topology.source, node.line,
                f"{path}.disk"))
        return problems

    def setup(self, node: PlannedNode, plan: NetworkPlan) -> NodeSetup:
        setup = super().setup(node, plan)
        settings = origin_config(node, plan)
        setup.files[CONFIG_NAME] = json.dumps(settings, indent=1)
        setup.disk_bytes = settings["episodes"] * settings["size"]  # the catalogue it writes
        config = "{state_dir}/" + CONFIG_NAME
        setup.services.append(ServiceSpec("origin", (sys.executable, "-m", "testbed.p2p.origin",
                                                     "--config", config)))
        setup.services.append(ServiceSpec("exporter", (
            sys.executable, "-m", "testbed.p2p.origin_exporter", "--config", config)))
        return setup
