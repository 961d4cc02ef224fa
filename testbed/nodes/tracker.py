"""`tracker`: a real BitTorrent tracker (Debian's opentracker), the PCs' only rendezvous.

Debian builds opentracker with an access whitelist: it tracks only the info hashes in
its whitelist file, so the tracker's setup lists the catalogue's torrents (computed from
the origin's seeded content, the same bytes the origin writes).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from testbed.nodes.base import NodeKind, NodeSetup, ServiceSpec
from testbed.p2p.catalogue import info_hashes
from testbed.p2p.provision import TRACKER_PORT, origin_settings

if TYPE_CHECKING:
    from testbed.plan.model import NetworkPlan, PlannedNode

WHITELIST = "whitelist.txt"


class TrackerKind(NodeKind):
    name: ClassVar[str] = "tracker"
    description: ClassVar[str] = "a BitTorrent tracker (opentracker), HTTP and UDP on 6969"
    sections: ClassVar[frozenset[str]] = frozenset()

    def setup(self, node: PlannedNode, plan: NetworkPlan) -> NodeSetup:
        setup = super().setup(node, plan)
        setup.files[WHITELIST] = "".join(f"{h}\n" for h in info_hashes(origin_settings(plan)))
        # opentracker stays in the foreground; -d chroots it into its state directory (the
        # whitelist is read from there) and it drops root for nobody; -A lets loopback read
        # its /stats.
        port = str(TRACKER_PORT)
        setup.services.append(ServiceSpec("opentracker", (
            "opentracker", "-p", port, "-P", port, "-d", "{state_dir}", "-u", "nobody",
            "-w", WHITELIST, "-A", "127.0.0.1")))
        return setup
