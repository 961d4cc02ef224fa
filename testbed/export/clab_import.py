"""A containerlab topology -> Topology, so `testbed up lab.clab.yml` builds it natively.

Two cases. A file `testbed export` wrote carries the testbed's view of every node and
link (export/metadata.py), so it gives back exactly the topology it came from (its exec
lines are derived from that and not read). Any other file may hold `kind: linux` nodes
and veth links; addresses come from `ip addr add A dev IF` exec lines (or the link's
`ipv4:`), a node's `ip route add default via X` makes the link toward X its uplink,
`sysctl -w net.ipv4.ip_forward=1` makes it a router, and unpinned links get addresses
from the planner. Everything else fails with what is supported, at file:line.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from testbed.errors import Problem, TopologyError
from testbed.export import metadata
from testbed.topology.model import Addressing, Link, Node, Topology
from testbed.topology.source import SourceDict, SourceList, YamlSourceError, load_yaml

SUFFIXES = (".clab.yml", ".clab.yaml")
LAB_NAME = re.compile(r"^[a-z][a-z0-9-]{0,11}$")
SUPPORTED = ("supported: kind linux nodes; veth links (endpoints [\"a:eth1\", \"b:eth1\"] or "
             "type: veth); exec lines `ip addr add A/P dev IF`, `ip link set IF up`, "
             "`ip route add default via X`, `sysctl -w net.ipv4.ip_forward=1` (in exec: or "
             "as stages' container execs, of the node, its group, kind or the defaults)")
# node keys that do not change what runs in the node or how it is wired (the rest, e.g.
# cmd, binds, startup-config, network-mode, ports, sysctls, would be lost on import)
NODE_KEYS = frozenset({
    "kind", "image", "image-pull-policy", "group", "labels", "env", "exec",
    "stages", "config", "mgmt-ipv4", "mgmt-ipv6", "privileged", "startup-delay",
    "restart-policy", "auto-remove", "cpu", "cpu-set", "memory", "shm-size", "position",
})


def is_containerlab(path: Path, raw: object) -> bool:
    """By name (*.clab.yml), or by shape (a `topology:` section and no `nodes:`) once
    `raw` is loaded."""
    if path.name.endswith(SUFFIXES):
        return True
    return isinstance(raw, dict) and "topology" in raw and "nodes" not in raw


def load_containerlab(path: Path, overrides: Mapping[str, str]) -> Topology:
    """A *.clab.yml file. An export (large, machine-written) is parsed with the fast C
    loader; anything else with the line-keeping loader, for file:line in messages."""
    fast_loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        fast = yaml.load(path.read_text(encoding="utf-8"), Loader=fast_loader)
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        fast = None  # the line-keeping loader says what and where
    topo = fast.get("topology") if isinstance(fast, dict) else None
    if isinstance(topo, dict) and metadata.LAB_KEY in _vars(topo.get("defaults")):
        return import_containerlab(fast, str(path), overrides)
    try:
        raw = load_yaml(path)
    except YamlSourceError as exc:
        raise TopologyError(exc.problems) from None
    return import_containerlab(raw, str(path), overrides)


def _line(container: object, key: str | int | None = None) -> int | None:
    """Where a key (or the container itself) is written; None for fast-loaded data."""
    if isinstance(container, SourceDict | SourceList):
        return container.line_of(key) if key is not None else container.line  # type: ignore[arg-type]
    return None


@dataclass
class _Import:
    raw: dict[str, Any]
    source: str
    problems: list[Problem] = field(default_factory=list)

    def report(self, message: str, container: object, key: str | int | None, path: str
               ) -> None:
        self.problems.append(Problem(message, self.source, _line(container, key), path))


def import_containerlab(raw: Any, source: str, overrides: Mapping[str, str]) -> Topology:
    """The Topology of a containerlab file; raises TopologyError with every problem."""
    if not isinstance(raw, dict) or not isinstance(raw.get("topology"), dict):
        raise TopologyError([Problem("a containerlab topology needs name: and topology: "
                                     "{nodes: ..., links: ...}", source, 1)])
    run = _Import(raw, source)
    if overrides:
        run.report(f"--set {', '.join(overrides)}: a containerlab topology has no parameters",
                   raw, "name", "name")
    name = raw.get("name")
    if not isinstance(name, str) or not LAB_NAME.match(name):
        run.report(f"lab name must be 1-12 chars of a-z, 0-9 and '-', starting with a letter "
                   f"(namespaces are tb-<name>-<node>); got {name!r}", raw, "name", "name")
    topo = raw["topology"]
    defaults = topo.get("defaults") or {}
    lab = _vars(defaults).get(metadata.LAB_KEY) or {}
    nodes_raw = topo.get("nodes")
    if not isinstance(nodes_raw, dict) or not nodes_raw:
        run.report("topology.nodes must be a non-empty mapping", topo, "nodes",
                   "topology.nodes")
        raise TopologyError(run.problems)
    addressing = Addressing(**lab["addressing"]) if lab.get("addressing") else _addressing(raw)
    addresses: dict[str, dict[str, str]] = {}  # node -> interface -> CIDR (foreign labs)
    defaults_via: dict[str, str] = {}
    nodes: dict[str, Node] = {}
    for node_name, spec in nodes_raw.items():
        spec = spec if isinstance(spec, dict) else SourceDict(line=_line(nodes_raw, node_name))
        node = _node(run, str(node_name), spec, topo, addresses, defaults_via)
        if node is not None:
            nodes[node.name] = node
    links = _links(run, topo, nodes, addresses, defaults_via)
    if run.problems:
        raise TopologyError(run.problems)
    nodes = {n: _with_uplink(node, links) for n, node in nodes.items()}
    return Topology(name=str(name), description=str(lab.get("description") or ""),
                    source=source, params=dict(lab.get("params") or {}),
                    addressing=addressing, nodes=nodes, links=tuple(links),
                    overlay=metadata.overlay_from_vars(lab.get("overlay")))


def _vars(spec: object) -> dict[str, Any]:
    config = spec.get("config") if isinstance(spec, dict) else None
    found = config.get("vars") if isinstance(config, dict) else None
    return found if isinstance(found, dict) else {}


def _addressing(raw: dict[str, Any]) -> Addressing:
    subnet = (raw.get("mgmt") or {}).get("ipv4-subnet")
    return Addressing(mgmt=subnet) if subnet and subnet != "auto" else Addressing()


def _kind(spec: dict[str, Any], topo: dict[str, Any]) -> object:
    group = (topo.get("groups") or {}).get(spec.get("group")) or {}
    return spec.get("kind") or group.get("kind") or (topo.get("defaults") or {}).get("kind")


def _labels(raw: object) -> dict[str, Any]:
    labels = dict(raw) if isinstance(raw, dict) else {}
    labels.pop("testbed-kind", None)
    return {k: {"true": True, "false": False}.get(v, v) if isinstance(v, str) else v
            for k, v in labels.items()}


def _node(run: _Import, name: str, spec: dict[str, Any], topo: dict[str, Any],
          addresses: dict[str, dict[str, str]], defaults_via: dict[str, str]) -> Node | None:
    path = f"topology.nodes.{name}"
    kind = _kind(spec, topo)
    if kind != "linux":
        run.report(f"node {name}: kind {kind!r} cannot be imported; {SUPPORTED}", spec, "kind",
                   f"{path}.kind")
        return None
    env = {str(k): str(v) for k, v in (spec.get("env") or {}).items()}
    carried = _vars(spec).get(metadata.KEY)
    if isinstance(carried, dict):  # written by `testbed export`
        return metadata.node_from_vars(name, carried, _labels(spec.get("labels")), env,
                                       _line(spec))
    forwards = False
    for line, container, i, here in _exec_lines(run, name, spec, topo):
        try:
            words = shlex.split(str(line))
        except ValueError as exc:  # an unclosed quote
            run.report(f"node {name}: exec line {line!r}: {exc}", container, i, here)
            continue
        if words[:3] == ["ip", "addr", "add"] or words[:3] == ["ip", "address", "add"]:
            if len(words) == 6 and words[4] == "dev":
                addresses.setdefault(name, {})[words[5]] = words[3]
                continue
        elif words[:3] == ["ip", "link", "set"] and words[-1] == "up" and len(words) == 5:
            continue
        elif words[:5] == ["ip", "route", "add", "default", "via"] and len(words) == 6:
            defaults_via[name] = words[5]
            continue
        elif words[:2] == ["sysctl", "-w"] and words[2:] == ["net.ipv4.ip_forward=1"]:
            forwards = True
            continue
        run.report(f"node {name}: exec line {line!r} cannot be imported (testbed computes "
                   f"routes, firewalls and services itself); {SUPPORTED}", container, i, here)
    return Node(name=name, kind="router" if forwards else "host", group=None, index=None,
                labels=_labels(spec.get("labels")), uplink=None, command=None, env=env,
                lan_pool=None, nat=None, firewall=None, proxy=None, line=_line(spec))


def _levels(name: str, spec: dict[str, Any], topo: dict[str, Any]
            ) -> list[tuple[str, dict[str, Any]]]:
    """Where a node's settings come from, as containerlab merges them: the defaults, its
    kind's, its group's, its own (path, mapping)."""
    group = spec.get("group") or (topo.get("defaults") or {}).get("group")
    found = [("topology.defaults", topo.get("defaults")),
             ("topology.kinds.linux", (topo.get("kinds") or {}).get("linux")),
             (f"topology.groups.{group}", (topo.get("groups") or {}).get(group)),
             (f"topology.nodes.{name}", spec)]
    return [(path, level) for path, level in found if isinstance(level, dict)]


def _exec_lines(run: _Import, name: str, spec: dict[str, Any], topo: dict[str, Any]
                ) -> list[tuple[str, object, int, str]]:
    """Every command containerlab would run in the node: each level's stages' container
    execs and exec: lines, as (line, container, index, path); keys that would be lost on
    import are reported, at the level that sets them."""
    lines: list[tuple[str, object, int, str]] = []
    for path, level in _levels(name, spec, topo):
        for key in level:
            if key not in NODE_KEYS:
                run.report(f"node {name}: {key!r} cannot be imported (the testbed runs no "
                           f"container image); {SUPPORTED}; node keys accepted: "
                           f"{', '.join(sorted(NODE_KEYS))}", level, key, f"{path}.{key}")
        stages = level.get("stages")
        for stage, body in (stages.items() if isinstance(stages, dict) else ()):
            execs = body.get("exec") if isinstance(body, dict) else None
            if isinstance(execs, dict):  # the {on-enter: [...], on-exit: [...]} form
                execs = [{"command": c, "phase": phase} for phase, commands in execs.items()
                         for c in commands or []]
            for i, entry in enumerate(execs or []):
                here = f"{path}.stages.{stage}.exec[{i}]"
                command = entry.get("command") if isinstance(entry, dict) else None
                target = entry.get("target", "container") if isinstance(entry, dict) else None
                if not isinstance(command, str) or target != "container":
                    run.report(f"node {name}: stage exec {entry!r} cannot be imported (only "
                               f"commands run in the node); {SUPPORTED}", execs, i, here)
                    continue
                lines.append((command, execs, i, here))
        execs = level.get("exec") or []
        lines += [(str(line), execs, i, f"{path}.exec[{i}]") for i, line in enumerate(execs)]
    return lines


def _endpoints(run: _Import, link: object, i: int) -> list[tuple[str, str]] | None:
    path = f"topology.links[{i}]"
    if not isinstance(link, dict):
        run.report("a link is a mapping with endpoints:", None, None, path)
        return None
    kind = link.get("type", "veth")
    ends = link.get("endpoints")
    if kind != "veth" or not isinstance(ends, list) or len(ends) != 2:
        run.report(f"link type {kind!r} cannot be imported; {SUPPORTED}", link,
                   "type" if "type" in link else "endpoints", path)
        return None
    out = []
    for end in ends:
        if isinstance(end, dict):
            out.append((str(end.get("node")), str(end.get("interface"))))
        else:
            node, _, iface = str(end).partition(":")
            out.append((node, iface))
    return out


def _links(run: _Import, topo: dict[str, Any], nodes: dict[str, Node],
           addresses: dict[str, dict[str, str]], defaults_via: dict[str, str]) -> list[Link]:
    links = []
    for i, raw in enumerate(topo.get("links") or []):
        ends = _endpoints(run, raw, i)
        if ends is None:
            continue
        (a, a_if), (b, b_if) = ends
        missing = [n for n in (a, b) if n not in (topo.get("nodes") or {})]
        if missing:
            run.report(f"link end {missing[0]!r} is not a node", raw, "endpoints",
                       f"topology.links[{i}].endpoints")
            continue
        if a not in nodes or b not in nodes:
            continue  # the node itself was reported
        line = _line(raw)
        link_vars = raw.get("vars")
        carried = link_vars.get(metadata.KEY) if isinstance(link_vars, dict) else None
        if isinstance(carried, dict):
            links.append(metadata.link_from_vars(carried, run.source, line))
            continue
        pinned = [str(x) for x in raw.get("ipv4") or []]
        ip_a = addresses.get(a, {}).get(a_if) or (pinned[0] if pinned else None)
        ip_b = addresses.get(b, {}).get(b_if) or (pinned[1] if len(pinned) > 1 else None)
        if _toward(defaults_via.get(b), ip_a) and not _toward(defaults_via.get(a), ip_b):
            (a, ip_a), (b, ip_b) = (b, ip_b), (a, ip_a)  # the uplink's owner is end a
        uplink = _toward(defaults_via.get(a), ip_b)
        links.append(Link(a=a, b=b, rate_ab=None, rate_ba=None, loss=None, delay=None,
                          jitter=None, queue=None, ip_a=ip_a, ip_b=ip_b, uplink_of_a=uplink,
                          line=line, file=run.source, path=f"links[{i}]"))
    return links


def _toward(via: str | None, cidr: str | None) -> bool:
    return bool(via and cidr and ipaddress.ip_interface(cidr).ip == ipaddress.ip_address(via))


def _with_uplink(node: Node, links: list[Link]) -> Node:
    if node.uplink is not None:
        return node
    up = next((link.b for link in links if link.a == node.name and link.uplink_of_a), None)
    if up is None:
        return node
    return dataclasses.replace(node, uplink=up)
