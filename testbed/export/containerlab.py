"""Topology + plan -> a containerlab topology (`kind: linux` nodes on the node image).

Interfaces are renamed the containerlab way: its management interface is eth0, so a
node's emulated eth<k> becomes eth<k+1>, and the kinds' setup (NAT, firewall, services)
is computed on that renamed plan, so every rule names the interfaces that will exist.
A switch becomes a node holding a Linux bridge over its ports (shaped as in the native
fabric). Each node's commands are its `configure` stage's on-exit execs and the stage
waits for its gateway's, so NATs and routers are set up before the hosts behind them;
for clabernetes, whose topology model has no stages, they are plain `exec:` lines.
"""

from __future__ import annotations

import copy
import ipaddress
from dataclasses import dataclass, field
from typing import Any

import yaml

from testbed.errors import ExportError, Problem
from testbed.export import metadata
from testbed.export.node_setup import (
    BATCH_ABOVE,
    NodeLinks,
    Port,
    host_commands,
    link_setup,
    switch_commands,
)
from testbed.nodes.registry import KindRegistry, default_registry
from testbed.plan.model import NetworkPlan
from testbed.topology.model import Link, Topology

DEFAULT_IMAGE = "localhost/outage-testbed-node:latest"
DEFAULT_STATE_ROOT = "/var/lib/testbed"
MGMT = "eth0"


@dataclass
class ExportOptions:
    image: str = DEFAULT_IMAGE
    state_root: str = DEFAULT_STATE_ROOT  # each node keeps its files in <root>/<node>
    python: str = "python3"  # the image's interpreter with the project installed
    batch_above: int = BATCH_ABOVE  # more ip/tc lines than this in a node: a -batch file
    # containerlab: commands as configure-stage execs ordered by wait-for; clabernetes:
    # plain exec: lines, since its topology model has no stages (clabverter drops them)
    flavour: str = "containerlab"


FLAVOURS = ("containerlab", "clabernetes")


@dataclass
class Export:
    document: dict[str, Any]
    notes: list[str] = field(default_factory=list)  # what was left out, said out loud

    def dump(self) -> str:
        dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # C: ~10x faster
        return yaml.dump(self.document, Dumper=dumper, sort_keys=False, width=100,
                         default_flow_style=False)


def clab_interface(name: str) -> str:
    """eth<k> of the native lab -> eth<k+1> (eth0 is containerlab's management)."""
    return f"eth{int(name.removeprefix('eth')) + 1}"


def _check(topology: Topology, plan: NetworkPlan) -> list[Problem]:
    problems = []

    def report(message: str, node: str, key: str) -> None:
        path = f"nodes.{node}.{key}"
        line = topology.line_of(path) or topology.nodes[node].line
        problems.append(Problem(message, topology.source, line, path))

    for node in topology.nodes.values():
        if node.held_back:
            report("a held-back node cannot be exported: containerlab has no add_nodes step "
                   "to bring it in later (set its count to 0, or held_back: false)",
                   node.name, "held_back")
        if node.switch is not None and node.switch.type == "ovs":
            report("an Open vSwitch switch cannot be exported (the node image runs Linux "
                   "bridges); use switch: {type: linux}", node.name, "switch.type")
    return problems


def _data_links(topology: Topology) -> list[Link]:
    """The topology's links in the order the planner made their veths (uplinks first)."""
    return sorted(topology.links, key=lambda link: not link.uplink_of_a)


def export_containerlab(topology: Topology, plan: NetworkPlan,
                        options: ExportOptions | None = None,
                        registry: KindRegistry | None = None) -> Export:
    """The containerlab document for `topology`; raises ExportError naming the node and
    field for anything containerlab cannot express."""
    options = options or ExportOptions()
    if options.flavour not in FLAVOURS:
        raise ValueError(f"export flavour {options.flavour!r}: one of {', '.join(FLAVOURS)}")
    registry = registry or default_registry()
    problems = _check(topology, plan)
    if problems:
        raise ExportError(problems)
    notes: list[str] = []
    renamed = copy.deepcopy(plan)
    for node in renamed.nodes.values():
        if node.namespace:
            for iface in node.interfaces:
                iface.name = clab_interface(iface.name)
            if node.uplink_interface:
                node.uplink_interface = clab_interface(node.uplink_interface)
            node.mgmt_interface = MGMT
    switches = [n.name for n in plan.nodes.values() if n.kind == "switch"]
    switch_of = dict(zip(plan.bridges, switches, strict=True))  # the planner's br<i> order
    node_of = {n.namespace: n.name for n in plan.nodes.values() if n.namespace}
    switch_ports: dict[str, list[str]] = {s: [] for s in switches}
    per_node: dict[str, NodeLinks] = {}
    links: list[dict[str, Any]] = []
    data_veths = [v for v in plan.veths if plan.mgmt_namespace not in
                  (v.a.namespace, v.b.namespace)]
    for veth, link in zip(data_veths, _data_links(topology), strict=True):
        ports = []
        for end in (veth.a, veth.b):
            if end.namespace == plan.fabric_namespace:
                switch = switch_of[end.bridge or ""]
                switch_ports[switch].append(f"eth{len(switch_ports[switch]) + 1}")
                ports.append(Port(switch, switch_ports[switch][-1], end.shaping))
            else:
                ports.append(Port(node_of[end.namespace], clab_interface(end.name),
                                  end.shaping))
        link_setup(ports[0], ports[1], per_node)
        link_entry: dict[str, Any] = {
            "endpoints": [f"{p.node}:{p.interface}" for p in ports],
            "vars": {metadata.KEY: metadata.link_vars(link)}}
        links.append(link_entry)
        if link.capture is not None:
            notes.append(f"{link.path or link.a}: capture: is not exported (captures "
                         "record under `testbed run`; run tcpdump in the node instead)")

    nodes: dict[str, Any] = {}
    mgmt_net = ipaddress.ip_network(topology.addressing.mgmt)
    used = {ipaddress.ip_interface(n.mgmt_address).ip for n in plan.nodes.values()
            if n.mgmt_address}
    hub = next(mgmt_net.hosts())  # the management gateway (docker's, or the host's)
    spare = (a for a in mgmt_net.hosts() if a not in used and a != hub)  # for switches
    for name, planned in renamed.nodes.items():
        spec = planned.node
        state_dir = f"{options.state_root}/{name}"
        if planned.namespace:
            setup = registry.get(planned.kind).setup(planned, renamed)
            commands = host_commands(planned, renamed, setup, per_node.get(name, NodeLinks()),
                                     state_dir, options.python, options.batch_above)
            mgmt_ip = str(ipaddress.ip_interface(planned.mgmt_address or "").ip)
        else:
            commands = switch_commands(switch_ports[name], per_node.get(name, NodeLinks()),
                                       state_dir, MGMT, options.batch_above)
            mgmt_ip = str(next(spare))
        entry: dict[str, Any] = {"kind": "linux", "mgmt-ipv4": mgmt_ip}
        if spec.group:
            entry["group"] = spec.group
        entry["labels"] = {**_labels(spec.labels), "testbed-kind": spec.kind}
        if spec.env:
            entry["env"] = dict(spec.env)
        if options.flavour == "clabernetes":
            entry["exec"] = [c.replace("$", "$$") for c in commands]  # as below
        else:
            entry["stages"] = {"configure": _configure_stage(spec.uplink, commands)}
        entry["config"] = {"vars": {metadata.KEY: metadata.node_vars(spec)}}
        nodes[name] = entry

    document = {
        "name": topology.name,
        "mgmt": {"network": f"tb-{topology.name}", "ipv4-subnet": str(mgmt_net)},
        "topology": {
            "defaults": {
                # no `privileged:` key: containerlab runs every kind privileged by
                # default, and releases before v0.78 reject the key (strict parsing)
                "kind": "linux", "image": options.image,
                "config": {"vars": {metadata.LAB_KEY: metadata.lab_vars(
                    topology.description, topology.addressing, topology.overlay,
                    dict(topology.params))}},
            },
            "nodes": nodes,
            "links": links,
        },
    }
    return Export(document, notes)


def _configure_stage(gateway: str | None, commands: list[str]) -> dict[str, Any]:
    """The node's commands as its configure stage's on-exit execs, waiting for its
    gateway's (a switch waits for its own gateway in turn). containerlab marks a stage
    done only after its on-exit execs have run, and releases the nodes that wait for it
    after that; a node's plain `exec:` list runs after the stage is done, racing the
    nodes behind it. So only here does `wait-for` mean the NAT's rules and the router's
    routes are in place before the hosts behind them start their services."""
    stage: dict[str, Any] = {}
    if gateway:
        stage["wait-for"] = [{"node": gateway, "stage": "configure"}]
    # containerlab expands $VARS in the file: a literal $ is written $$
    stage["exec"] = [{"command": c.replace("$", "$$"), "phase": "on-exit"} for c in commands]
    return stage


def _labels(labels: dict[str, Any]) -> dict[str, Any]:
    """containerlab labels are strings or non-negative numbers (CLAB_LABEL_<KEY> in the
    node's environment)."""
    out: dict[str, Any] = {}
    for key, value in labels.items():
        if isinstance(value, bool):
            out[key] = "true" if value else "false"
        elif isinstance(value, int | float) and value >= 0:
            out[key] = value
        else:
            out[key] = str(value)
    return out

