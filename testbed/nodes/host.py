"""End hosts: `host` (plain), `peer` (runs a P2P program), `login` (the central server)."""

from __future__ import annotations

import dataclasses
import json
from typing import TYPE_CHECKING, ClassVar

from testbed.nodes.base import NodeKind, NodeSetup, ServiceSpec
from testbed.nodes.templating import check_placeholders, command_argv

if TYPE_CHECKING:
    from testbed.errors import Problem
    from testbed.plan.model import NetworkPlan, PlannedNode
    from testbed.topology.model import Node, Topology


class HostKind(NodeKind):
    name: ClassVar[str] = "host"
    description: ClassVar[str] = "an end host; runs `command` if given"

    def validate(self, node: Node, topology: Topology) -> list[Problem]:
        return check_placeholders(node, topology.source)

    runs_overlay: ClassVar[bool] = False  # without a command, run the reference peer

    def setup(self, node: PlannedNode, plan: NetworkPlan) -> NodeSetup:
        setup = super().setup(node, plan)
        argv = command_argv(node.node)
        if argv:
            setup.services.append(ServiceSpec("main", argv, dict(node.node.env)))
        elif self.runs_overlay and plan.overlay is not None:
            from testbed.nodes.overlay import CONFIG_NAME, peer_config, peer_service

            config = peer_config(node, plan, plan.overlay)
            setup.files[CONFIG_NAME] = json.dumps(dataclasses.asdict(config), indent=1)
            setup.services.append(peer_service())
        return setup


class PeerKind(HostKind):
    name: ClassVar[str] = "peer"
    description: ClassVar[str] = ("a P2P peer: runs `command` (any binary), or the reference "
                                  "overlay peer when the topology has `overlay:`")
    runs_overlay: ClassVar[bool] = True
    sections: ClassVar[frozenset[str]] = HostKind.sections | {"supernode"}


class LoginKind(HostKind):
    name: ClassVar[str] = "login"
    description: ClassVar[str] = ("the central login server host: runs `command`, or the "
                                  "reference login server when the topology has `overlay:`")
    runs_overlay: ClassVar[bool] = True
