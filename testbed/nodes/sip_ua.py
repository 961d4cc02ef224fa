"""`sip_ua`: a real SIP softphone (Debian's baresip, headless) registering at a registrar.

A reboot kills baresip; boot starts it again, and it REGISTERs at once, as a phone
does when its PC comes back (testbed/sip/baresip.py says why baresip, and what it does
on failure).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from testbed.errors import Problem
from testbed.nodes.base import NodeKind, NodeSetup, ServiceSpec
from testbed.topology.model import RegistrarSettings, SipUaSettings

if TYPE_CHECKING:
    from testbed.plan.model import NetworkPlan, PlannedNode
    from testbed.topology.model import Node, Topology

SETTLE_S = 1.0


def registrar_name(node: Node, registrars: list[str]) -> str | None:
    wanted = node.sip_ua.registrar if node.sip_ua else None
    if wanted is not None:
        return wanted if wanted in registrars else None
    return registrars[0] if len(registrars) == 1 else None


class SipUaKind(NodeKind):
    name: ClassVar[str] = "sip_ua"
    description: ClassVar[str] = "a SIP user agent (baresip) that registers at a registrar"
    sections: ClassVar[frozenset[str]] = frozenset({"sip_ua"})

    def validate(self, node: Node, topology: Topology) -> list[Problem]:
        registrars = sorted(n.name for n in topology.nodes_of_kind("registrar"))
        if registrar_name(node, registrars) is not None:
            return []
        wanted = node.sip_ua.registrar if node.sip_ua else None
        known = ", ".join(registrars) or "none"
        message = (f"{wanted!r} is not a registrar node; registrar nodes: {known}" if wanted
                   else f"a sip_ua needs a registrar node; set sip_ua.registrar (registrar "
                        f"nodes: {known})")
        return [Problem(message, topology.source, node.line, f"nodes.{node.name}.sip_ua")]

    def setup(self, node: PlannedNode, plan: NetworkPlan) -> NodeSetup:
        from testbed.sip.auth import lab_key, password
        from testbed.sip.baresip import account_line, baresip_config

        setup = super().setup(node, plan)
        registrars = sorted(n.name for n in plan.nodes.values() if n.kind == "registrar")
        target = plan.nodes[registrar_name(node.node, registrars) or registrars[0]]
        settings = node.node.sip_ua or SipUaSettings()
        registrar = target.node.registrar or RegistrarSettings()
        mgmt = (node.mgmt_address or "127.0.0.1").split("/")[0]
        setup.files["config"] = baresip_config(node.primary_address() or "", mgmt)
        secret = (password(lab_key(plan.lab, target.name), node.name)
                  if registrar.auth == "digest" else None)
        setup.files["accounts"] = account_line(
            node.name, f"{target.primary_address()}:{registrar.port}", settings.regint,
            secret)
        setup.services.append(ServiceSpec("baresip", ("baresip", "-f", "{state_dir}"),
                                          settle=SETTLE_S))
        return setup
