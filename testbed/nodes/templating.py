"""Substitution of {name} {addr} {bootstrap} {login} ... in the commands nodes run."""

from __future__ import annotations

import shlex
import string
from collections.abc import Mapping
from typing import TYPE_CHECKING

from testbed.errors import Problem
from testbed.topology.model import Node

if TYPE_CHECKING:
    from testbed.plan.model import NetworkPlan, PlannedNode

PLACEHOLDERS = ("name", "addr", "n", "state_dir", "lab", "mgmt_addr", "kind", "bootstrap",
                "login")


def placeholder_values(node: PlannedNode, plan: NetworkPlan, state_dir: str
                       ) -> dict[str, object]:
    """What a node's command may use. {bootstrap}: comma-separated addresses of the lab's
    public nodes labelled sn_capable; {login}: the first login node's address."""
    label = plan.overlay.sn_label if plan.overlay else "sn_capable"
    bootstrap = [p.primary_address() or "" for p in sorted(plan.nodes.values(),
                                                          key=lambda p: p.name)
                 if p.node.labels.get(label) and p.realm == "public" and p.primary_address()]
    login = next((p.primary_address() for p in plan.nodes.values()
                  if p.kind == "login" and p.primary_address()), "")
    return {"name": node.name, "addr": node.primary_address() or "",
            "n": node.node.index or "", "state_dir": state_dir, "lab": plan.lab,
            "mgmt_addr": (node.mgmt_address or "").split("/")[0], "kind": node.kind,
            "bootstrap": ",".join(bootstrap), "login": login or ""}


def command_argv(node: Node) -> tuple[str, ...]:
    if node.command is None:
        return ()
    if isinstance(node.command, str):
        return tuple(shlex.split(node.command))
    return tuple(node.command)


def check_placeholders(node: Node, source: str) -> list[Problem]:
    problems = []
    for arg in command_argv(node):
        for _, field, _, _ in string.Formatter().parse(arg):
            if field is not None and field not in PLACEHOLDERS:
                problems.append(Problem(
                    f"unknown placeholder {{{field}}} in command; known: "
                    + ", ".join("{" + p + "}" for p in PLACEHOLDERS)
                    + " (write {{ and }} for literal braces)",
                    source, node.line, f"nodes.{node.name}.command"))
    return problems


def render_argv(argv: tuple[str, ...], values: Mapping[str, object]) -> tuple[str, ...]:
    return tuple(arg.format_map(dict(values)) for arg in argv)
