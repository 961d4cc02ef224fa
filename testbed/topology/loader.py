"""YAML file -> validated Topology. Collects every problem, then raises TopologyError."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from testbed.errors import Problem, TopologyError
from testbed.topology.convert import Converter
from testbed.topology.expand import expand_counted, merge, substitute
from testbed.topology.model import (
    Addressing,
    NodeSpec,
    Topology,
    TopologyFile,
)
from testbed.topology.resolve import resolve
from testbed.topology.source import SourceDict, YamlSourceError, load_yaml, load_yaml_text

LAB_NAME = re.compile(r"^[a-z][a-z0-9-]{0,11}$")


def load_topology(path: str | Path, overrides: Mapping[str, str] | None = None) -> Topology:
    """Load, expand and validate a topology file. `overrides` are --set name=value pairs."""
    path = Path(path)
    try:
        raw = load_yaml(path)
    except YamlSourceError as exc:
        raise TopologyError([exc.problem]) from None
    return build_topology(raw, str(path), overrides or {})


def load_topology_text(text: str, name: str = "<text>",
                       overrides: Mapping[str, str] | None = None) -> Topology:
    try:
        raw = load_yaml_text(text, name)
    except YamlSourceError as exc:
        raise TopologyError([exc.problem]) from None
    return build_topology(raw, name, overrides or {})


def build_topology(raw: Any, source: str, overrides: Mapping[str, str]) -> Topology:
    problems: list[Problem] = []
    if not isinstance(raw, SourceDict):
        raise TopologyError([Problem("a topology file must be a mapping with name: and nodes:",
                                     source, 1)])
    convert = Converter()
    params = _params(raw, overrides, source, problems)
    data = substitute(raw, params, problems.append)
    header = SourceDict({k: v for k, v in data.items() if k != "nodes"}, file=source, line=1)
    header.key_lines = dict(data.key_lines)
    shape = convert.to_dataclass(TopologyFile, header, "")
    name = data.get("name")
    if not isinstance(name, str) or not LAB_NAME.match(name):
        problems.append(Problem(
            f"lab name must be 1-12 chars of a-z, 0-9 and '-', starting with a letter; "
            f"got {name!r}", source, data.line_of("name") if "name" in data else 1, "name"))
    nodes_raw = data.get("nodes")
    if not isinstance(nodes_raw, SourceDict) or not nodes_raw:
        problems.append(Problem("nodes: must be a non-empty mapping of node name -> settings",
                                source, data.line_of("nodes"), "nodes"))
        raise TopologyError(_unique(problems + convert.problems))
    specs, node_lines = _node_specs(data, nodes_raw, convert, problems)
    addressing = (shape.addressing if shape and shape.addressing else None) or Addressing()
    top_links = (shape.links if shape else None) or []
    if problems or convert.problems:
        raise TopologyError(_unique(problems + convert.problems))
    topology, more = resolve(
        name=str(name), description=str(data.get("description") or ""), source=source,
        params=params, addressing=addressing, specs=specs, top_links=top_links,
        node_lines=node_lines, overlay=shape.overlay if shape else None,
    )
    if more:
        raise TopologyError(_unique(more))
    return topology


def _params(raw: SourceDict, overrides: Mapping[str, str], source: str,
            problems: list[Problem]) -> dict[str, Any]:
    declared = raw.get("params") or {}
    if not isinstance(declared, dict):
        problems.append(Problem("params: expected a mapping of name -> value", source,
                                raw.line_of("params"), "params"))
        declared = {}
    params = dict(declared)
    for key, text in overrides.items():
        if key not in params:
            known = ", ".join(sorted(params)) or "none declared"
            problems.append(Problem(f"--set {key}: no such parameter; known: {known}", source,
                                    raw.line_of("params"), f"params.{key}"))
            continue
        params[key] = yaml.safe_load(text)
    return params


def _node_specs(data: SourceDict, nodes_raw: SourceDict, convert: Converter,
                problems: list[Problem]
                ) -> tuple[dict[str, tuple[NodeSpec, int | None]], dict[str, int | None]]:
    defaults = data.get("defaults") if isinstance(data.get("defaults"), SourceDict) else None
    kinds = data.get("kinds") if isinstance(data.get("kinds"), SourceDict) else SourceDict()
    groups = data.get("groups") if isinstance(data.get("groups"), SourceDict) else SourceDict()
    expanded = expand_counted(nodes_raw, problems.append)
    specs: dict[str, tuple[NodeSpec, int | None]] = {}
    for name, body in expanded.items():
        path = f"nodes.{name}"
        if body is None:
            body = SourceDict(file=nodes_raw.file, line=expanded.line_of(name))
        if not isinstance(body, SourceDict):
            convert.problem("expected a mapping of node settings", expanded, name, path)
            continue
        index = body.pop("index", None)
        group_name = body.get("group")
        group = groups.get(group_name) if isinstance(group_name, str) else None
        if isinstance(group_name, str) and group is None:
            known = ", ".join(groups) or "none defined"
            convert.problem(f"unknown group {group_name!r}; groups: {known}", body, "group",
                            f"{path}.group")
        kind_name = body.get("kind") or (group or {}).get("kind") or (defaults or {}).get("kind")
        layers = [layer for layer in (defaults, kinds.get(kind_name) if kind_name else None,
                                      group, body) if isinstance(layer, SourceDict)]
        merged = layers[0]
        for layer in layers[1:]:
            merged = merge(merged, layer)
        spec = convert.to_dataclass(NodeSpec, merged, path)
        if spec is not None:
            specs[name] = (spec, index)
    return specs, {name: expanded.line_of(name) for name in expanded}


def _unique(problems: list[Problem]) -> list[Problem]:
    """Inherited or replicated mistakes are reported once, at the line they were written."""
    seen: set[tuple[str | None, int | None, str]] = set()
    out = []
    for p in problems:
        key = (p.file, p.line, p.message)
        if key not in seen:
            seen.add(key)
            out.append(p)
    return out
