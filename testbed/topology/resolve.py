"""Typed node specs -> resolved Topology, with the checks that need the whole picture:
known kinds, link ends that exist, uplinks that point at gateways, no uplink loops."""

from __future__ import annotations

import dataclasses
import difflib
import re
from collections.abc import Collection, Mapping
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
    TopLink,
    Topology,
)

NODE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$")


def resolve(*, name: str, description: str, source: str, params: Mapping[str, Any],
            addressing: Addressing, specs: Mapping[str, tuple[NodeSpec, int | None]],
            top_links: list[TopLink], node_lines: Mapping[str, int | None],
            overlay: OverlaySettings | None = None,
            lines: Mapping[str, int] | None = None) -> tuple[Topology, list[Problem]]:
    """`node_lines` names every node written (even one whose settings are invalid, so links
    to it are not reported as dangling); `lines` maps key paths to the lines they are on."""
    registry = default_registry()
    problems: list[Problem] = []
    topology = Topology(name=name, description=description, source=source,
                        params=dict(params), addressing=addressing, nodes={}, links=(),
                        overlay=overlay, lines=dict(lines or {}))

    def report(message: str, node: str | None, path: str, line: int | None = None) -> None:
        line = topology.line_of(path) or line
        if line is None and node is not None:
            line = node_lines.get(node)
        problems.append(Problem(message, source, line, path))

    if len(specs) > MAX_NODES:
        report(f"{len(specs)} nodes is more than the {MAX_NODES} a lab may have (what this "
               f"machine can hold is checked when the lab is built)", None,
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
        for section in registry.sections():
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
            supernode=spec.supernode, held_back=bool(spec.held_back), switch=spec.switch,
            registrar=spec.registrar, sip_ua=spec.sip_ua, origin=spec.origin,
            bittorrent=spec.bittorrent,
        )
        if spec.uplink is not None:
            if spec.uplink.to is None:
                report("an uplink needs to: (the gateway node)", node_name,
                       f"{path}.uplink.to")
            else:
                links.append(_link(node_name, spec.uplink, True, source, f"{path}.uplink",
                                   topology))
        for i, extra in enumerate(spec.links or []):
            if extra.to is None:
                report("a link needs to: (the other node)", node_name, f"{path}.links[{i}].to")
                continue
            links.append(_link(node_name, extra, False, source, f"{path}.links[{i}]",
                               topology))

    for i, top in enumerate(top_links):
        ends = top.between or []
        if len(ends) != 2:
            report("between: needs exactly two node names", None, f"links[{i}].between", 1)
            continue
        ips: list[str | None] = list(top.ip) if top.ip else [None, None]
        if len(ips) != 2:
            report("ip: needs two addresses, one per end", None, f"links[{i}].ip", 1)
            continue
        path = f"links[{i}]"
        link = _make_link(ends[0], ends[1], top, False, ips[0], ips[1], source,
                          topology.line_of(path), path)
        links.append(dataclasses.replace(link, capture=top.capture) if top.capture else link)

    for link in links:
        is_top = link.path.startswith("links[")
        for i, end in enumerate((link.a, link.b) if is_top else (link.b,)):
            if end not in node_lines:
                what = "uplink" if link.uplink_of_a else "link"
                key = f"{link.path}.between[{i}]" if is_top else f"{link.path}.to"
                report(f"{what} to unknown node {end!r}" + _close(end, node_lines), None, key)
        if link.a == link.b:
            report("a node cannot link to itself", link.a,
                   f"{link.path}.between" if is_top else f"{link.path}.to")
        if link.jitter is not None and link.delay is None:
            report("jitter varies the delay, so it needs delay: too, e.g. delay: 20ms",
                   link.a, f"{link.path}.jitter")
    for node in nodes.values():
        if node.uplink is None or node.uplink not in nodes:
            continue
        target = nodes[node.uplink]
        if not registry.get(target.kind).is_gateway:
            gateways = [k.name for k in registry if k.is_gateway]
            report(f"uplink to {target.name} (kind {target.kind}): an uplink must point at "
                   f"a gateway kind ({', '.join(gateways)})", node.name,
                   f"nodes.{node.name}.uplink.to")
    problems.extend(_uplink_loops(nodes, topology))
    topology = dataclasses.replace(topology, nodes=nodes, links=tuple(links))
    if not problems:
        for node in nodes.values():
            problems.extend(_locate(p, topology)
                            for p in registry.get(node.kind).validate(node, topology))
    return topology, problems


def _locate(problem: Problem, topology: Topology) -> Problem:
    """Kinds report at the node's line; point at the key the problem is about instead."""
    line = topology.line_of(problem.path) if problem.file == topology.source else None
    return dataclasses.replace(problem, line=line) if line else problem


def _link(name: str, spec: LinkSpec, uplink: bool, source: str, path: str,
          topology: Topology) -> Link:
    link = _make_link(name, spec.to or "", spec, uplink, spec.ip, spec.peer_ip, source,
                      topology.line_of(f"{path}.to"), path)
    return dataclasses.replace(link, capture=spec.capture) if spec.capture else link


def _make_link(a: str, b: str, shape: LinkShape, uplink: bool, ip_a: str | None,
               ip_b: str | None, source: str, line: int | None, path: str) -> Link:
    return Link(a=a, b=b, rate_ab=shape.rate_out(), rate_ba=shape.rate_in(), loss=shape.loss,
                delay=shape.delay, jitter=shape.jitter, queue=shape.queue, ip_a=ip_a,
                ip_b=ip_b, uplink_of_a=uplink, line=line, file=source, path=path)


def _uplink_loops(nodes: Mapping[str, Node], topology: Topology) -> list[Problem]:
    problems = []
    for start in nodes.values():
        seen = [start.name]
        current = start.uplink
        while current is not None and current in nodes:
            if current == start.name:
                path = f"nodes.{start.name}.uplink.to"
                problems.append(Problem(
                    "uplinks form a loop: " + " -> ".join([*seen, current])
                    + "; follow the uplinks and one must end at a node without uplink",
                    topology.source, topology.line_of(path) or start.line, path))
                break
            if current in seen:
                break
            seen.append(current)
            current = nodes[current].uplink
    return problems


def _close(name: str, known: Collection[str]) -> str:
    """A did-you-mean, or else the names there are (the first few)."""
    close = difflib.get_close_matches(name, list(known), n=1)
    if close:
        return f" (did you mean {close[0]!r}?)"
    names = sorted(known)
    shown = ", ".join(names[:8]) + (f", ... ({len(names)} in all)" if len(names) > 8 else "")
    return f"; nodes: {shown or 'none'}"
