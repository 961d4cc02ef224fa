"""`registrar`: Debian's Kamailio as SIP registrar and proxy, in its own host.

The config (testbed/sip/kamailio.py) is rendered into the node's state directory and
Kamailio runs in the foreground under the supervisor, so a reboot kills it and boot
starts it again like any service, with an empty in-memory location table. With
`media_relay: nat` (the default) rtpengine runs beside it as a second service
(testbed/sip/rtpengine.py), started first so that Kamailio finds it at start.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, ClassVar

from testbed.nodes.base import NodeKind, NodeSetup, ServiceSpec
from testbed.topology.model import RegistrarSettings

if TYPE_CHECKING:
    from testbed.plan.model import NetworkPlan, PlannedNode

SETTLE_S = 1.0  # Kamailio exits within this on a bad config or a port in use
RELAY_WAIT_S = 60.0  # rtpengine answers within ~50 ms of its start, minutes on a crushed host


class RegistrarKind(NodeKind):
    name: ClassVar[str] = "registrar"
    description: ClassVar[str] = "a SIP registrar and proxy (Kamailio), for sip_ua nodes"
    sections: ClassVar[frozenset[str]] = frozenset({"registrar"})

    def setup(self, node: PlannedNode, plan: NetworkPlan) -> NodeSetup:
        from testbed.sip.auth import lab_key
        from testbed.sip.kamailio import CONFIG_NAME, kamailio_config
        from testbed.sip.rtpengine import NG_PORT, rtpengine_argv

        setup = super().setup(node, plan)
        settings = node.node.registrar or RegistrarSettings()
        mgmt = (node.mgmt_address or "127.0.0.1").split("/")[0]
        setup.files[CONFIG_NAME] = kamailio_config(settings, node.primary_address() or "",
                                                   mgmt, lab_key(plan.lab, node.name))
        # -DD: no daemon, the supervisor owns the pid; -E: log to stderr (the service log)
        kamailio: tuple[str, ...] = ("kamailio", "-DD", "-E", "-f",
                                     "{state_dir}/" + CONFIG_NAME, "-Y", "{state_dir}",
                                     "-m", "32", "-M", "4")
        if settings.media_relay == "nat":
            setup.services.append(ServiceSpec(
                "rtpengine", rtpengine_argv(node.primary_address() or ""), settle=SETTLE_S))
            # Kamailio execs once the relay answers (testbed/sip/relay_wait.py says why)
            kamailio = (sys.executable, "-m", "testbed.sip.relay_wait",
                        f"127.0.0.1:{NG_PORT}", f"{RELAY_WAIT_S:g}", "--", *kamailio)
        setup.services.append(ServiceSpec("kamailio", kamailio, settle=SETTLE_S))
        return setup
