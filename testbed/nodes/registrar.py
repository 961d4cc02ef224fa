"""`registrar`: Debian's Kamailio as SIP registrar and proxy, in its own host.

The config (testbed/sip/kamailio.py) is rendered into the node's state directory and
Kamailio runs in the foreground under the supervisor, so a reboot kills it and boot
starts it again like any service, with an empty in-memory location table.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from testbed.nodes.base import NodeKind, NodeSetup, ServiceSpec
from testbed.topology.model import RegistrarSettings

if TYPE_CHECKING:
    from testbed.plan.model import NetworkPlan, PlannedNode

SETTLE_S = 1.0  # Kamailio exits within this on a bad config or a port in use


class RegistrarKind(NodeKind):
    name: ClassVar[str] = "registrar"
    description: ClassVar[str] = "a SIP registrar and proxy (Kamailio), for sip_ua nodes"
    sections: ClassVar[frozenset[str]] = frozenset({"registrar"})

    def setup(self, node: PlannedNode, plan: NetworkPlan) -> NodeSetup:
        from testbed.sip.kamailio import CONFIG_NAME, kamailio_config

        setup = super().setup(node, plan)
        settings = node.node.registrar or RegistrarSettings()
        mgmt = (node.mgmt_address or "127.0.0.1").split("/")[0]
        setup.files[CONFIG_NAME] = kamailio_config(settings, node.primary_address() or "",
                                                   mgmt)
        # -DD: no daemon, the supervisor owns the pid; -E: log to stderr (the service log)
        setup.services.append(ServiceSpec(
            "kamailio", ("kamailio", "-DD", "-E", "-f", "{state_dir}/" + CONFIG_NAME,
                         "-Y", "{state_dir}", "-m", "32", "-M", "4"), settle=SETTLE_S))
        return setup
