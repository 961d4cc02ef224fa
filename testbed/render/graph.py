"""Topology -> graph text (Graphviz dot, Mermaid). Replicated nodes can be folded into one
box ("home001..home160 x160") so large labs stay readable."""

from __future__ import annotations

import re
from dataclasses import dataclass

from testbed.topology.model import Topology
from testbed.units import format_bandwidth

SHAPES = {"router": "diamond", "switch": "box3d", "nat": "hexagon", "proxy": "component",
          "login": "doubleoctagon", "peer": "ellipse", "host": "ellipse"}
COLOURS = {"router": "#cfe2f3", "switch": "#d9d2e9", "nat": "#fce5cd", "proxy": "#f4cccc",
           "login": "#d9ead3", "peer": "#ffffff", "host": "#ffffff"}


@dataclass
class GraphNode:
    id: str
    label: str
    kind: str


@dataclass
class GraphEdge:
    a: str
    b: str
    label: str


def fold_key(name: str) -> str:
    return re.sub(r"\d+", "#", name)


def graph_of(topology: Topology, fold: bool) -> tuple[list[GraphNode], list[GraphEdge]]:
    members: dict[str, list[str]] = {}
    for node in topology.nodes.values():
        key = fold_key(node.name) if fold and node.index is not None else node.name
        members.setdefault(key, []).append(node.name)
    box_of = {name: key for key, names in members.items() for name in names}
    ids = _unique_ids(list(members))
    nodes = []
    for key, names in members.items():
        kind = topology.nodes[names[0]].kind
        if len(names) == 1:
            label = f"{names[0]}\\n{kind}"
        else:
            label = f"{names[0]}..{names[-1]}\\n{kind} x{len(names)}"
        nodes.append(GraphNode(ids[key], label, kind))
    edges: dict[tuple[str, str], GraphEdge] = {}
    for link in topology.links:
        a, b = ids[box_of[link.a]], ids[box_of[link.b]]
        if (a, b) in edges:
            continue
        label = _rates(link.rate_ab, link.rate_ba)
        if link.loss:
            label += f" loss {link.loss:.1%}"
        edges[(a, b)] = GraphEdge(a, b, label.strip())
    return nodes, list(edges.values())


def to_dot(topology: Topology, fold: bool = True) -> str:
    nodes, edges = graph_of(topology, fold)
    lines = [f'graph "{topology.name}" {{', "  graph [overlap=false, fontname=Helvetica];",
             "  node [style=filled, fontname=Helvetica, fontsize=10];",
             "  edge [fontname=Helvetica, fontsize=8];"]
    for n in nodes:
        lines.append(f'  {n.id} [label="{n.label}", shape={SHAPES.get(n.kind, "ellipse")}, '
                     f'fillcolor="{COLOURS.get(n.kind, "#ffffff")}"];')
    for e in edges:
        lines.append(f'  {e.a} -- {e.b} [label="{e.label}"];')
    lines.append("}")
    return "\n".join(lines) + "\n"


def to_mermaid(topology: Topology, fold: bool = True) -> str:
    nodes, edges = graph_of(topology, fold)
    lines = ["graph TD"]
    for n in nodes:
        lines.append(f'  {n.id}["{n.label.replace(chr(92) + "n", "<br/>")}"]')
    for e in edges:
        lines.append(f"  {e.a} ---|{e.label}| {e.b}" if e.label else f"  {e.a} --- {e.b}")
    return "\n".join(lines) + "\n"


def _rates(up: int | None, down: int | None) -> str:
    """'10Mbit' when symmetric, '512kbit up / 8Mbit down' when not."""
    def show(rate: int) -> str:
        text = format_bandwidth(rate)
        return text[:-4] + text[-4:].replace("mbit", "Mbit").replace("gbit", "Gbit")

    if up and down and up != down:
        return f"{show(up)} up / {show(down)} down"
    rate = up or down
    return show(rate) if rate else ""


def _id(name: str) -> str:
    return "n_" + re.sub(r"[^A-Za-z0-9_]", "_", name)


def _unique_ids(keys: list[str]) -> dict[str, str]:
    """Readable ids that stay distinct: 'a-b' and 'a_b' would both be n_a_b."""
    ids: dict[str, str] = {}
    used: set[str] = set()
    for key in keys:
        candidate, k = _id(key), 1
        while candidate in used:
            k += 1
            candidate = f"{_id(key)}_{k}"
        used.add(candidate)
        ids[key] = candidate
    return ids
