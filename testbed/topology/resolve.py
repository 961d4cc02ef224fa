"""Typed node specs -> resolved Topology, with the checks that need the whole picture:
known kinds, link ends that exist, uplinks that point at gateways, no uplink loops."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from testbed.errors import Problem
from testbed.nodes.registry import default_registry
from testbed.topology.model import (
    MAX_NODES,
    Addressing,
    Link,
    LinkShape,
    LinkSpec,
    Node,
    NodeSpec,
    OverlaySettings,
    Topology,
    TopLink,
)

NODE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$")
SECTIONS = ("nat", "firewall", "proxy", "lan_pool", "command", "env")


def resolve(*, name: str, description: str, source: str, params: Mapping[str, Any],
            addressing: Addressing, specs: Mapping[str, tuple[NodeSpec, int | None]],
            top_links: list[TopLink], node_lines: Mapping[str, int | None],
            overlay: OverlaySettings | None = None) -> tuple[Topology, list[Problem]]:
    registry = default_registry()
    problems: list[Problem] = []

    def report(message: str, node: str | None, path: str, line: int | None = None) -> None:
        if line is None and node is not None:
            line = node_lines.get(node)
        problems.append(Problem(message, source, line, path))

    if len(specs) > MAX_NODES:
        report(f"{len(specs)} nodes is more than the {MAX_NODES} a lab may have", None,
               "nodes", 1)
    nodes: dict[str, Node] = {}
    links: list[Link] = []
    for node_name, (spec, index) in specs.items():
        path = f"nodes.{node_name}"
        if not NODE_NAME.match(node_name):
            report("node names are 1-40 chars of letters, digits, '_', '.', '-'",
                   node_name, path)
        if spec.kind is None:
            report(f"no kind: set kind: (one of {', '.join(registry.names())}) on the node,"
                   " its group or defaults", node_name, f"{path}.kind")
            continue
        if spec.kind not in registry:
            report(f"unknown node kind {spec.kind!r}; known kinds: "
                   f"{', '.join(registry.names())}", node_name, f"{path}.kind")
            continue
        kind = registry.get(spec.kind)
        for section in SECTIONS:
            if getattr(spec, section) is not None and section not in kind.sections:
                allowed = [k.name for k in registry if section in k.sections]
                report(f"{section}: does not apply to kind {spec.kind}; it applies to: "
                       f"{', '.join(allowed) or 'no kind'}", node_name, f"{path}.{section}")
        command = spec.command
        nodes[node_name] = Node(
            name=node_name, kind=spec.kind, group=spec.group, index=index,
            labels=dict(spec.labels or {}),
            uplink=spec.uplink.to if spec.uplink else None,
            command=tuple(command) if isinstance(command, list) else command,
            env=dict(spec.env or {}), lan_pool=spec.lan_pool, nat=spec.nat,
            firewall=spec.firewall, proxy=spec.proxy, line=node_lines.get(node_name),
        )
        if spec.uplink is not None:
            links.append(_link(node_name, spec.uplink, True, source))
        for i, extra in enumerate(spec.links or []):
            if extra.to is None:
                report("a link needs to: (the other node)", node_name, f"{path}.links[{i}]")
                continue
            links.append(_link(node_name, extra, False, source))

    for i, top in enumerate(top_links):
        ends = top.between or []
        if len(ends) != 2:
            report("between: needs exactly two node names", None, f"links[{i}].between", 1)
            continue
        ips = top.ip or [None, None]
        if len(ips) != 2:
            report("ip: needs two addresses, one per end", None, f"links[{i}].ip", 1)
            continue
        links.append(_make_link(ends[0], ends[1], top, False, ips[0], ips[1], source, None))

    for link in links:
        for end, other in ((link.a, link.b), (link.b, link.a)):
            if end not in nodes and end not in specs:
                report(f"link to unknown node {end!r}" + _close(end, nodes), other,
                       f"nodes.{other}.links")
        if link.a == link.b:
            report("a node cannot link to itself", link.a, f"nodes.{link.a}")
        if link.jitter is not None and link.delay is None:
            report("jitter needs a delay to vary around", link.a, f"nodes.{link.a}")
    for node in nodes.values():
        if node.uplink is None or node.uplink not in nodes:
            continue
        target = nodes[node.uplink]
        if not registry.get(target.kind).is_gateway:
            gateways = [k.name for k in registry if k.is_gateway]
            report(f"uplink to {target.name} (kind {target.kind}): an uplink must point at "
                   f"a gateway kind ({', '.join(gateways)})", node.name,
                   f"nodes.{node.name}.uplink.to")
    problems.extend(_uplink_loops(nodes, source))
    topology = Topology(name=name, description=description, source=source,
                        params=dict(params), addressing=addressing, nodes=nodes,
                        links=tuple(links), overlay=overlay)
    if not problems:
        for node in nodes.values():
            problems.extend(registry.get(node.kind).validate(node, topology))
    return topology, problems


def _link(name: str, spec: LinkSpec, uplink: bool, source: str) -> Link:
    return _make_link(name, spec.to or "", spec, uplink, spec.ip, spec.peer_ip, source, None)


def _make_link(a: str, b: str, shape: LinkShape, uplink: bool, ip_a: str | None,
               ip_b: str | None, source: str, line: int | None) -> Link:
    return Link(a=a, b=b, rate_ab=shape.rate_out(), rate_ba=shape.rate_in(), loss=shape.loss,
                delay=shape.delay, jitter=shape.jitter, queue=shape.queue, ip_a=ip_a,
                ip_b=ip_b, uplink_of_a=uplink, line=line, file=source)


def _uplink_loops(nodes: Mapping[str, Node], source: str) -> list[Problem]:
    problems = []
    for start in nodes.values():
        seen = [start.name]
        current = start.uplink
        while current is not None and current in nodes:
            if current == start.name:
                problems.append(Problem("uplinks form a loop: " + " -> ".join([*seen, current]),
                                        source, start.line, f"nodes.{start.name}.uplink"))
                break
            if current in seen:
                break
            seen.append(current)
            current = nodes[current].uplink
    return problems


def _close(name: str, nodes: Mapping[str, Node]) -> str:
    import difflib

    close = difflib.get_close_matches(name, list(nodes), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""
