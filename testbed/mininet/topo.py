"""Mininet topologies in: `--custom FILE --topo NAME[,ARG...]` as `mn` reads them, mapped
onto the topology model (switches as Linux bridges, or OVS for OVSBridge; hosts on one
subnet, 10.0.0.0/8 as Mininet gives them; TCLink options as link shaping).

Everything the model cannot honour fails here, before anything is built, naming what and
what to do instead: controllers and OpenFlow switches, unknown link or host classes,
options with no equivalent, loops of switches (Linux bridges here run no spanning tree).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from testbed.errors import InputError, Problem

if TYPE_CHECKING:
    from testbed.topology.model import Topology

IP_BASE = "10.0.0.0/8"  # Mininet's default ipBase
BUILTIN = ("minimal", "linear", "reversed", "single", "tree", "torus")

# link options of Mininet's TCLink -> keys of our links (values converted below)
LINK_SHAPE = ("bw", "delay", "jitter", "loss", "max_queue_size")
LINK_IGNORED = ("port1", "port2", "use_htb", "node1", "node2")  # no meaning for a bridge
LINK_CLASSES = ("Link", "TCLink")
SWITCH_CLASSES = {"LinuxBridge": "linux", "OVSBridge": "ovs"}
OPENFLOW_SWITCHES = ("OVSSwitch", "OVSKernelSwitch", "UserSwitch", "IVSSwitch")
SWITCH_IGNORED = ("dpid",)  # an identifier for controllers; harmless without one


class MininetTopologyError(InputError):
    """A Mininet topology uses something the testbed cannot build."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        super().__init__(problems, what="Mininet topology")


def builtin_topos() -> dict[str, Any]:
    """mn's own --topo names."""
    from mininet.topo import LinearTopo, MinimalTopo, SingleSwitchReversedTopo, SingleSwitchTopo
    from mininet.topolib import TorusTopo, TreeTopo

    return {"minimal": MinimalTopo, "linear": LinearTopo, "reversed": SingleSwitchReversedTopo,
            "single": SingleSwitchTopo, "tree": TreeTopo, "torus": TorusTopo}


def read_custom(path: str) -> dict[str, Any]:
    """Run a --custom file as `mn` does and return what it defines (topos, controllers...)."""
    file = Path(path)
    if not file.is_file():
        raise MininetTopologyError([Problem(f"no such file {path!r}", path)])
    namespace: dict[str, Any] = {}
    try:
        exec(compile(file.read_text(), str(file), "exec"), namespace, namespace)
    except Exception as exc:  # the user's Python: report it, as mn would fail on it
        raise MininetTopologyError([Problem(f"running it failed: {type(exc).__name__}: "
                                            f"{exc}", path)]) from exc
    return namespace


def build_topo(spec: str, custom: Sequence[str] = ()) -> Any:
    """The Topo object for `--topo spec` (mn's splitArgs: NAME,ARG,KEY=VALUE)."""
    from mininet.util import splitArgs

    topos = builtin_topos()
    where = custom[-1] if custom else None
    for path in custom:
        defined = read_custom(path)
        if defined.get("controllers"):
            raise MininetTopologyError([Problem(
                f"defines controllers ({', '.join(defined['controllers'])}): the testbed runs "
                "no OpenFlow controller; its switches are learning bridges (as `mn --switch "
                "lxbr --controller none`). Remove `controllers` and use the topology as is, "
                "or keep OpenFlow experiments in Mininet", path)])
        topos.update(defined.get("topos") or {})
    name, args, kwargs = splitArgs(spec)
    if name not in topos:
        raise MininetTopologyError([Problem(
            f"--topo {name}: no such topology; known: {', '.join(sorted(topos))}"
            + ("" if custom else " (a custom one needs --custom FILE with a `topos` dict)"),
            where)])
    try:
        return topos[name](*args, **kwargs)
    except Exception as exc:
        raise MininetTopologyError([Problem(f"--topo {spec}: building the Topo failed: "
                                            f"{type(exc).__name__}: {exc}", where)]) from exc


def lab_name(spec: str) -> str:
    """A lab name from a --topo spec: tree,depth=2,fanout=3 -> tree-2-3."""
    words = re.split(r"[^a-z0-9]+", spec.lower().replace("=", ","))
    name, values = words[0], [w for w in words[1:] if w and w[0].isdigit()]
    text = "-".join([name or "mn", *values])[:12].strip("-")
    return text if text[:1].isalpha() else f"mn-{text}"[:12]


def _class_name(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, type):
        return value.__name__
    func = getattr(value, "func", None)  # functools.partial(LinuxBridge, stp=True)
    return getattr(func, "__name__", None) or type(value).__name__


def _number(value: object) -> str:
    number = float(value)  # type: ignore[arg-type]
    return str(int(number)) if number == int(number) else f"{number:g}"


class _Mapper:
    def __init__(self, topo: Any, source: str | None) -> None:
        self.topo = topo
        self.source = source
        self.problems: list[Problem] = []

    def problem(self, what: str, message: str) -> None:
        self.problems.append(Problem(message, self.source, None, what))

    def switch(self, name: str) -> dict[str, Any]:
        info = dict(self.topo.nodeInfo(name))
        info.pop("isSwitch", None)
        body: dict[str, Any] = {"kind": "switch"}
        cls = _class_name(info.pop("cls", None))
        if cls in OPENFLOW_SWITCHES:
            self.problem(f"switch {name}", f"cls={cls} is an OpenFlow switch that needs a "
                         "controller and flow rules; the testbed has neither. Use "
                         "LinuxBridge (the default here) or OVSBridge, both learning bridges")
        elif cls is not None and cls not in SWITCH_CLASSES:
            self.problem(f"switch {name}", f"unknown switch class {cls}; supported: "
                         f"{', '.join(SWITCH_CLASSES)}")
        elif cls == "OVSBridge":
            body["switch"] = {"type": "ovs"}
        for key in info:
            if key in SWITCH_IGNORED:
                continue
            hint = ("a loop of switches needs a spanning tree, which Linux bridges here do "
                    "not run: remove the redundant link" if key == "stp" else
                    "OpenFlow settings have no meaning without a controller"
                    if key in ("protocols", "failMode", "inband", "listenPort") else
                    "remove it")
            self.problem(f"switch {name}", f"option {key}={info[key]!r} is not supported: "
                         f"{hint}")
        return body

    def host(self, name: str) -> tuple[dict[str, Any], str | None]:
        info = dict(self.topo.nodeInfo(name))
        cls = _class_name(info.pop("cls", None))
        if cls not in (None, "Host"):
            self.problem(f"host {name}", f"host class {cls} is not supported (CPU limits, "
                         "Docker hosts, ...): every host is a network namespace; remove "
                         "cls= or use Host")
        ip = info.pop("ip", None)
        for key in info:
            self.problem(f"host {name}", f"option {key}={info[key]!r} is not supported "
                         "(the testbed sets interfaces, MACs and routes itself); remove it")
        return {"kind": "host"}, ip

    def link(self, a: str, b: str, info: dict[str, Any]) -> dict[str, Any]:
        what = f"link {a}-{b}"
        info = dict(info)
        cls = _class_name(info.pop("cls", None))
        if cls is not None and cls not in LINK_CLASSES:
            self.problem(what, f"unknown link class {cls}; supported: Link, TCLink (bw, "
                         "delay, jitter, loss, max_queue_size). Use TCLink")
        shape: dict[str, Any] = {}
        if info.get("bw") is not None:
            shape["bandwidth"] = f"{_number(info['bw'])}Mbit"
        for key in ("delay", "jitter"):
            if info.get(key) is not None:
                value = info[key]
                shape[key] = value if isinstance(value, str) else f"{_number(value)}ms"
        if info.get("loss"):
            shape["loss"] = f"{_number(info['loss'])}%"
        if info.get("max_queue_size") is not None:
            shape["queue"] = int(info["max_queue_size"])
        for key, value in info.items():
            if key not in LINK_SHAPE and key not in LINK_IGNORED and value is not None:
                self.problem(what, f"link option {key}={value!r} is not supported; "
                             f"supported: {', '.join(LINK_SHAPE)}")
        return shape


def topology_data(topo: Any, name: str, source: str | None = None,
                  description: str = "") -> dict[str, Any]:
    """A Mininet Topo as topology-file data (what `testbed convert` writes)."""
    mapper = _Mapper(topo, source)
    from testbed.topology.loader import LAB_NAME

    if not LAB_NAME.match(name):
        mapper.problem("name", f"lab name {name!r}: 1-12 chars of a-z, 0-9 and '-', starting "
                       "with a letter (give one with --name)")
    switches = list(topo.switches())
    hosts = [h for h in topo.hosts() if h not in set(switches)]
    nodes: dict[str, dict[str, Any]] = {s: mapper.switch(s) for s in switches}
    base = ipaddress.ip_network(IP_BASE)
    pinned: dict[str, str] = {}
    host_bodies: dict[str, dict[str, Any]] = {}
    for index, host in enumerate(hosts, start=1):
        body, ip = mapper.host(host)
        host_bodies[host] = body
        pinned[host] = _host_ip(ip, base, index)
    top_links: list[dict[str, Any]] = []
    for a, b, info in topo.links(sort=True, withInfo=True):
        shape = mapper.link(a, b, info)
        if a in host_bodies and b in host_bodies:
            mapper.problem(f"link {a}-{b}", "a link between two hosts: every Mininet host "
                           "here sits on one switched subnet; put a switch between them")
            continue
        if a in host_bodies or b in host_bodies:
            host, switch = (a, b) if a in host_bodies else (b, a)
            item: dict[str, Any] = {"to": switch, **shape}
            links = host_bodies[host].setdefault("links", [])
            if not links:
                item = {"to": switch, "ip": pinned[host], **shape}
            links.append(item)
        else:
            top_links.append({"between": [a, b], **shape})
    _check_switch_graph(mapper, switches, top_links, host_bodies)
    if mapper.problems:
        raise MininetTopologyError(mapper.problems)
    nodes.update(host_bodies)
    data: dict[str, Any] = {
        "name": name,
        "description": description or f"Mininet topology {name}",
        "addressing": {"public": IP_BASE},
        "nodes": nodes,
    }
    if top_links:
        data["links"] = top_links
    return data


def _host_ip(ip: str | None, base: ipaddress.IPv4Network | ipaddress.IPv6Network,
             index: int) -> str:
    """Mininet's addresses: the host's ip= (default prefix /8), else the index-th of ipBase."""
    if ip:
        return ip if "/" in ip else f"{ip}/{base.prefixlen}"
    return f"{base.network_address + index}/{base.prefixlen}"


def _check_switch_graph(mapper: _Mapper, switches: list[str], links: list[dict[str, Any]],
                        hosts: dict[str, dict[str, Any]]) -> None:
    """One connected, loop-free switched network: that is what one subnet on Linux
    bridges without spanning tree can carry."""
    parent = {s: s for s in switches}

    def find(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    closing = []
    for link in links:
        a, b = link["between"]
        ra, rb = find(a), find(b)
        if ra == rb:
            closing.append(f"{a}-{b}")
        parent[ra] = rb
    if closing:
        shown = ", ".join(closing[:5]) + (f" and {len(closing) - 5} more" if len(closing) > 5
                                          else "")
        mapper.problem("switches", f"links {shown} close loops of switches; Linux bridges "
                       "here run no spanning tree, so broadcasts would circle forever "
                       "(Mininet needs --switch lxbr,stp=1 for that too). Remove those "
                       "links, or convert and build a routed topology instead")
    used = {find(item["to"]) for body in hosts.values() for item in body.get("links", [])}
    if len(used) > 1:
        mapper.problem("switches", f"the hosts hang off {len(used)} separate switched "
                       "networks; Mininet gives every host an address of one subnet "
                       f"({IP_BASE}), which needs one connected network: link the switches")


def topology_yaml(data: dict[str, Any], origin: str) -> str:
    header = (f"# Converted from the Mininet topology {origin} by `testbed convert`.\n"
              "# Add NATs, proxies or an overlay as in topologies/skype-2007.yaml.\n")
    return header + yaml.safe_dump(data, sort_keys=False, default_flow_style=None)


def convert(spec: str, custom: Sequence[str] = (), name: str | None = None) -> str:
    """YAML text of the topology `mn --custom ... --topo spec` would build."""
    topo = build_topo(spec, custom)
    origin = f"{spec}" + (f" from {', '.join(custom)}" if custom else "")
    data = topology_data(topo, name or lab_name(spec), custom[-1] if custom else None,
                         f"Mininet --topo {origin}")
    return topology_yaml(data, origin)



def load(spec: str, custom: Sequence[str] = (), name: str | None = None) -> Topology:
    """The Topology for `--custom ... --topo spec`, through the ordinary loader."""
    return _load_yaml(convert(spec, custom, name), name or lab_name(spec))


def from_mininet(topo: Any, custom: Sequence[str] = (), name: str | None = None) -> Topology:
    """A Topology from a Mininet Topo object (`TreeTopo(depth=2)`) or a --topo spec
    (`"tree,depth=2"`), for `Lab.up(from_mininet(...))`."""
    if isinstance(topo, str):
        return load(topo, custom, name)
    cls = type(topo).__name__
    name = name or lab_name(cls.lower().removesuffix("topo") or "mn")
    data = topology_data(topo, name, None, f"Mininet {cls}")
    return _load_yaml(topology_yaml(data, cls), name)


def _load_yaml(text: str, name: str) -> Topology:
    """Loaded from a file, which `up` copies into the lab's state directory (so
    `Lab.attach` rebuilds the plan from it); the file goes when this process exits."""
    import atexit
    import shutil
    import tempfile

    from testbed.topology.loader import load_topology

    folder = tempfile.mkdtemp(prefix="testbed-mininet-")
    atexit.register(shutil.rmtree, folder, True)
    path = Path(folder) / f"{name}.yaml"
    path.write_text(text)
    return load_topology(path)
