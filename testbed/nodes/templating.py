"""Substitution of {name} {addr} {n} {state_dir} {lab} {mgmt_addr} in node commands."""

from __future__ import annotations

import shlex
import string
from collections.abc import Mapping

from testbed.errors import Problem
from testbed.topology.model import Node

PLACEHOLDERS = ("name", "addr", "n", "state_dir", "lab", "mgmt_addr", "kind")


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
