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
from testbed.topology.source import (
    SourceDict,
    YamlSourceError,
    key_lines,
    load_yaml,
    load_yaml_text,
)

LAB_NAME = re.compile(r"^[a-z][a-z0-9-]{0,11}$")


def load_topology(path: str | Path, overrides: Mapping[str, str] | None = None) -> Topology:
    """Load, expand and validate a topology file. `overrides` are --set name=value pairs."""
    path = Path(path)
    from testbed.export import clab_import  # `testbed up lab.clab.yml`

    if clab_import.is_containerlab(path, None):
        return clab_import.load_containerlab(path, overrides or {})
    try:
        raw = load_yaml(path)
    except YamlSourceError as exc:
        raise TopologyError(exc.problems) from None
    if clab_import.is_containerlab(path, raw):
        return clab_import.import_containerlab(raw, str(path), overrides or {})
    return build_topology(raw, str(path), overrides or {})


def load_topology_text(text: str, name: str = "<text>",
                       overrides: Mapping[str, str] | None = None) -> Topology:
    try:
        raw = load_yaml_text(text, name)
    except YamlSourceError as exc:
        raise TopologyError(exc.problems) from None
    return build_topology(raw, name, overrides or {})


def build_topology(raw: Any, source: str, overrides: Mapping[str, str]) -> Topology:
    """Every problem is collected and reported at once: header and settings problems do not
    stop the whole-topology checks; only mistakes that change which nodes exist (params,
    count:, names) do, as those would be followed by misleading dangling-link reports."""
    problems: list[Problem] = []
    if not isinstance(raw, SourceDict):
        raise TopologyError([Problem("a topology file must be a mapping with name: and nodes:",
                                     source, 1)])
    convert = Converter()
    params = _params(raw, overrides, source, problems)
    substituted: list[Problem] = []  # ${...} that could not be computed
    data = substitute(raw, params, substituted.append)
    structural = list(substituted)  # the set of nodes is uncertain: no whole-topology checks
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
        raise TopologyError(_unique(structural + problems + convert.problems, substituted))
    lines = key_lines(header)
    specs, node_lines = _node_specs(data, nodes_raw, convert, structural, lines)
    addressing = (shape.addressing if shape and shape.addressing else None) or Addressing()
    top_links = (shape.links if shape else None) or []
    found = structural + problems + convert.problems
    if structural:
        raise TopologyError(_unique(found, substituted))
    topology, more = resolve(
        name=str(name), description=str(data.get("description") or ""), source=source,
        params=params, addressing=addressing, specs=specs, top_links=top_links,
        node_lines=node_lines, overlay=shape.overlay if shape else None, lines=lines,
    )
    # a key already reported (e.g. `kind: 5`) is not reported again (as "no kind")
    reported = {p.path for p in found if p.path}
    found += [p for p in more if not _under(p.path, reported)]
    if found:
        raise TopologyError(_unique(found, substituted))
    return topology


def _under(path: str, reported: set[str]) -> bool:
    return any(path == r or path.startswith((r + ".", r + "[")) for r in reported)


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
                problems: list[Problem], lines: dict[str, int]
                ) -> tuple[dict[str, tuple[NodeSpec, int | None]], dict[str, int | None]]:
    defaults = _mapping(data.get("defaults"))
    kinds = _mapping(data.get("kinds")) or SourceDict()
    groups = _mapping(data.get("groups")) or SourceDict()
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
        kind_name = (body.get("kind") or (group.get("kind") if group else None)
                     or (defaults.get("kind") if defaults else None))
        layers = [layer for layer in (defaults, kinds.get(kind_name) if kind_name else None,
                                      group, body) if isinstance(layer, SourceDict)]
        merged = layers[0]
        for layer in layers[1:]:
            merged = merge(merged, layer)
        lines.update(key_lines(merged, path))
        line = expanded.line_of(name)
        if line:
            lines[path] = line
        spec = convert.to_dataclass(NodeSpec, merged, path)
        if spec is not None:
            specs[name] = (spec, index)
    return specs, {name: expanded.line_of(name) for name in expanded}


def _mapping(value: object) -> SourceDict | None:
    return value if isinstance(value, SourceDict) else None


def _unique(problems: list[Problem], substituted: list[Problem]) -> list[Problem]:
    """Inherited or replicated mistakes are reported once, at the line they were written,
    and in line order. A value whose ${...} could not be computed is reported once: not
    again as a wrong value ('got '${homes}'') on the same line."""
    failed = {(p.file, p.line) for p in substituted}
    seen: set[tuple[str | None, int | None, str]] = set()
    out = []
    for p in problems:
        key = (p.file, p.line, p.message)
        if key in seen or (p not in substituted and (p.file, p.line) in failed
                           and "${" in p.message):
            continue
        seen.add(key)
        out.append(p)
    return sorted(out, key=lambda p: (p.file or "", p.line or 0))
