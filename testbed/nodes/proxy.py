"""`proxy`: a real HTTP CONNECT proxy daemon (tinyproxy) in its own host."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from testbed.nodes.base import NodeKind, NodeSetup, ServiceSpec
from testbed.topology.model import ProxySettings

if TYPE_CHECKING:
    from testbed.plan.model import NetworkPlan, PlannedNode

CONFIG_NAME = "tinyproxy.conf"


def tinyproxy_config(port: int) -> str:
    # No ConnectPort line: CONNECT is allowed to every port, as corporate proxies that
    # let Skype out on 80/443 and beyond did. No Allow line: every client may use it
    # (the site firewall decides who reaches it).
    return "\n".join([
        "# written by outage-testbed for this lab node",
        f"Port {port}",
        "Timeout 600",
        "MaxClients 200",
        "LogLevel Info",
        "DisableViaHeader Yes",
        "",
    ])


class ProxyKind(NodeKind):
    name: ClassVar[str] = "proxy"
    description: ClassVar[str] = "an HTTP CONNECT proxy (tinyproxy) for proxy-only sites"
    sections: ClassVar[frozenset[str]] = frozenset({"proxy"})

    def setup(self, node: PlannedNode, plan: NetworkPlan) -> NodeSetup:
        setup = super().setup(node, plan)
        settings = node.node.proxy or ProxySettings()
        setup.files[CONFIG_NAME] = tinyproxy_config(settings.port)
        # -d: stay in the foreground so the supervisor owns the pid.
        setup.services.append(ServiceSpec("tinyproxy",
                                          ("tinyproxy", "-d", "-c", "{state_dir}/" + CONFIG_NAME)))
        return setup
