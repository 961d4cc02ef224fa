"""The topology model: typed, pure data, no backend handles.

These dataclasses are the single source of truth for the YAML format: the loader converts
YAML into them field by field, and `testbed schema` generates the JSON Schema from them.
Field metadata: `doc` (description), `unit` (how a string is parsed: bandwidth, duration,
ratio, size, cidr, ipif), `min`/`max` for numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from testbed.capture.options import CaptureOptions
from testbed.topology.cdn import BitTorrentSettings, OriginSettings

NatType = Literal["full-cone", "restricted-cone", "port-restricted-cone", "symmetric"]
NAT_TYPES: tuple[str, ...] = ("full-cone", "restricted-cone", "port-restricted-cone", "symmetric")

Scalar = str | int | float | bool

# Sanity bounds of the format, not of a machine: the default mgmt network (a /16 in /24
# shards of 250) holds 64,000 nodes; what this machine can hold is checked before a lab
# is built (backends/capacity.py), with the reason when it cannot.
MAX_COUNT = 30000
MAX_NODES = 60000


def doc(text: str, **extra: Any) -> Any:
    """A dataclass field default of None with its description (and parse hints)."""
    return field(default=None, metadata={"doc": text, **extra})


@dataclass
class LinkShape:
    """Impairments on a link. `up` is the direction from the declaring node toward `to`."""

    bandwidth: int | None = doc("rate in both directions, e.g. 10Mbit", unit="bandwidth")
    up: int | None = doc("rate from this node toward the other end (upload)", unit="bandwidth")
    down: int | None = doc("rate toward this node (download)", unit="bandwidth")
    loss: float | None = doc("random packet loss in both directions, e.g. 1%", unit="ratio")
    delay: float | None = doc("one-way delay each direction, e.g. 20ms (needs sch_netem)",
                              unit="duration")
    jitter: float | None = doc("delay variation, e.g. 5ms (needs sch_netem and delay)",
                               unit="duration")
    queue: int | None = doc("queue length in packets at each end's rate limiter",
                            min=2, max=100000)

    def rate_out(self) -> int | None:
        """Rate leaving the declaring node."""
        return self.up if self.up is not None else self.bandwidth

    def rate_in(self) -> int | None:
        """Rate arriving at the declaring node."""
        return self.down if self.down is not None else self.bandwidth


@dataclass
class LinkSpec(LinkShape):
    """A link declared on a node: `uplink:` (the way to the internet) or an item of `links:`."""

    to: str | None = doc("name of the node at the other end (may use {n} in counted nodes)")
    ip: str | None = doc("pin this end's address, CIDR form, e.g. 198.18.5.2/24", unit="ipif")
    peer_ip: str | None = doc("pin the other end's address, CIDR form", unit="ipif")
    capture: CaptureOptions | None = doc(
        "capture on this node's end of the link during `testbed run` (tcpdump; pcaps in "
        "the run's captures/)")


@dataclass
class TopLink(LinkShape):
    """A link in the top-level `links:` list, between two named nodes."""

    between: list[str] | None = doc("the two node names, e.g. [router1, router2]")
    ip: list[str] | None = doc("pin both ends' addresses, in the order of `between`",
                               unit="ipif-list")
    capture: CaptureOptions | None = doc(
        "capture on the first end's interface during `testbed run` (the second end's "
        "when the first is a switch)")


@dataclass
class SwitchSettings:
    """What implements a `switch` node."""

    type: Literal["linux", "ovs"] = field(
        default="linux",
        metadata={"doc": "linux (a Linux bridge) or ovs (an Open vSwitch bridge, run by the "
                         "lab's own ovsdb-server and ovs-vswitchd)"})
    datapath: Literal["netdev", "system"] = field(
        default="netdev",
        metadata={"doc": "ovs: netdev (OVS's userspace datapath, works on any kernel) or "
                         "system (the openvswitch kernel module's, e.g. in the lab VM)"})


@dataclass
class NatSettings:
    """How a `nat` node maps and filters: the four classic behaviours (RFC 3489 names)."""

    type: NatType = field(
        default="port-restricted-cone",
        metadata={"doc": "mapping/filtering behaviour: " + ", ".join(NAT_TYPES)},
    )
    udp_timeout: float = field(
        default=30.0,
        metadata={"doc": "idle time before a UDP mapping is forgotten, e.g. 30s",
                  "unit": "duration"},
    )


@dataclass
class FirewallSettings:
    """Egress policy of a gateway (`router` or `nat`) for the site behind it."""

    egress: Literal["open", "proxy-only"] = field(
        default="open",
        metadata={"doc": "open, or proxy-only: only the named proxy may talk to the outside"},
    )
    proxy: str | None = doc("the proxy node that alone may reach the outside (proxy-only)")


@dataclass
class ProxySettings:
    """A real HTTP CONNECT proxy daemon run in a `proxy` node."""

    software: Literal["tinyproxy"] = field(
        default="tinyproxy", metadata={"doc": "the proxy daemon to run"}
    )
    port: int = field(default=8888, metadata={"doc": "TCP port it listens on", "min": 1,
                                              "max": 65535})


@dataclass
class RegistrarSettings:
    """Kamailio as SIP registrar and proxy (kind registrar); see docs/sip.md."""

    variant: Literal["plain", "overload-control"] = field(default="plain", metadata={
        "doc": "plain: answer every REGISTER; overload-control: a ratelimit pipe answers "
               "503 with Retry-After above `rate` (RFC 5390/7339)"})
    port: int = field(default=5060, metadata={"doc": "SIP UDP port", "min": 1, "max": 65535})
    expires: float = field(default=3600.0, metadata={
        "doc": "registration lifetime granted (max_expires; RFC 3261's default 3600s)",
        "unit": "duration"})
    rate: float = field(default=20.0, metadata={
        "doc": "overload-control: SIP requests per second it accepts", "min": 1,
        "max": 100000})
    retry_after: float = field(default=10.0, metadata={
        "doc": "overload-control: Retry-After of its 503", "unit": "duration"})
    metrics_port: int = field(default=9100, metadata={
        "doc": "xhttp_prom /metrics on the management address", "min": 1, "max": 65535})
    auth: Literal["digest", "none"] = field(default="digest", metadata={
        "doc": "digest: challenge every REGISTER without valid credentials (401, RFC 3261 "
               "digest; each phone gets its password); none: accept every REGISTER"})
    media_relay: Literal["nat", "never"] = field(default="nat", metadata={
        "doc": "nat: relay the media of calls with a party behind a NAT through rtpengine "
               "on the registrar node; never: media always direct between the phones"})


@dataclass
class SipUaSettings:
    """A real SIP softphone (baresip) in a `sip_ua` node."""

    registrar: str | None = doc("the registrar node (default: the topology's only one)")
    regint: float = field(default=3600.0, metadata={
        "doc": "registration interval the UA asks for", "unit": "duration"})


@dataclass
class NodeSpec:
    """A node as written in YAML; also the shape of `defaults`, `kinds.*` and `groups.*`."""

    kind: str | None = doc("node kind: host, router, switch, nat, proxy, login, peer, "
                           "registrar, sip_ua, origin, tracker, bt_peer")
    group: str | None = doc("a group from `groups:` whose settings this node inherits")
    count: int | None = doc("replicate this node; its name must contain {n} (1..count); "
                            "0 makes none, e.g. an optional part sized by a parameter",
                            min=0, max=MAX_COUNT)
    vary: dict[str, list[Any]] | None = doc(
        "per-replica values cycled by {n}: field path -> list, e.g. {nat.type: [...]}"
    )
    labels: dict[str, Scalar] | None = doc("free-form labels for selection, e.g. os: windows")
    uplink: LinkSpec | None = doc("the link toward the internet; gives the default route")
    links: list[LinkSpec] | None = doc("further links to other nodes")
    command: str | list[str] | None = doc(
        "program to run in the node; {name} {addr} {n} {state_dir} {lab} are substituted"
    )
    env: dict[str, str] | None = doc("environment variables for `command`")
    lan_pool: str | None = doc("address pool for the segments behind this nat/router",
                               unit="cidr")
    switch: SwitchSettings | None = doc("what implements it: Linux bridge or Open vSwitch "
                                        "(kind switch)")
    nat: NatSettings | None = doc("NAT behaviour (kind nat)")
    firewall: FirewallSettings | None = doc("egress policy (kind router or nat)")
    proxy: ProxySettings | None = doc("proxy daemon settings (kind proxy)")
    supernode: SupernodeOverride | None = doc(
        "this node's supernode capacity over overlay.supernode, e.g. a dedicated "
        "mega-supernode (kind peer)")
    registrar: RegistrarSettings | None = doc("Kamailio settings (kind registrar)")
    sip_ua: SipUaSettings | None = doc("SIP user agent settings (kind sip_ua)")
    held_back: bool | None = doc(
        "built at `up` but switched off (data links down, no services) until a scenario's "
        "add_nodes step brings it in, e.g. the corrective push's dedicated supernodes")
    origin: OriginSettings | None = doc("catalogue and web server of a CDN origin "
                                        "(kind origin)")
    bittorrent: BitTorrentSettings | None = doc("BitTorrent client and request process of a "
                                                "home PC (kind bt_peer)")


@dataclass
class Addressing:
    """Address pools. All addresses live inside the lab's own namespaces."""

    public: str = field(
        default="198.18.0.0/15",
        metadata={"doc": "the emulated internet (RFC 2544 benchmarking range)", "unit": "cidr"},
    )
    private: str = field(
        default="192.168.0.0/16",
        metadata={"doc": "default pool behind each NAT (each NAT is its own realm)",
                  "unit": "cidr"},
    )
    mgmt: str = field(
        default="100.127.0.0/16",
        metadata={"doc": "out-of-band management network", "unit": "cidr"},
    )


@dataclass
class LoginCapacity:
    """The login server's capacity: the scenario's main bottleneck knob."""

    rate: float = field(default=200.0, metadata={"doc": "logins per second it processes",
                                                 "min": 0.1, "max": 100000})
    queue: int = field(default=200, metadata={"doc": "requests that may wait", "min": 0,
                                              "max": 1000000})
    when_full: Literal["busy", "stall"] = field(
        default="busy", metadata={"doc": "busy: answer retry-after at once; stall: no answer"})
    retry_after: float = field(default=10.0, metadata={"doc": "retry-after it tells clients",
                                                       "unit": "duration"})


@dataclass
class SupernodeCapacity:
    """Supernode eligibility and capacity (CALIBRATION.md defaults, scaled)."""

    port: int = field(default=33033, metadata={"doc": "overlay TCP/UDP port (plus TCP 80, 443)",
                                               "min": 1024, "max": 65535})
    max_children: int = field(default=40, metadata={"doc": "clients one supernode holds",
                                                    "min": 1, "max": 100000})
    joins_per_second: float = field(default=20.0, metadata={"doc": "joins it accepts per second",
                                                            "min": 0.1, "max": 100000})
    min_bandwidth: int = field(default=1_000_000, metadata={
        "doc": "least upload rate a node needs to become a supernode (unshaped counts as "
               "enough)", "unit": "bandwidth"})
    min_uptime: float = field(default=30.0, metadata={
        "doc": "uptime before an eligible node becomes a supernode", "unit": "duration"})
    overload: Literal["busy", "drop-role"] = field(
        default="busy", metadata={"doc": "busy: shed load with retry-after; drop-role: the "
                                         "2010 self-protection"})
    retry_after: float = field(default=10.0, metadata={"doc": "retry-after when busy",
                                                       "unit": "duration"})
    threshold: float = field(default=2.0, metadata={
        "doc": "drop-role: x nominal join load that counts as overload", "min": 1, "max": 100})
    sustain: float = field(default=10.0, metadata={
        "doc": "drop-role: how long the overload must last", "unit": "duration"})


@dataclass
class SupernodeOverride:
    """One node's supernode settings; what it leaves out comes from overlay.supernode."""

    max_children: int | None = doc("clients this supernode holds", min=1, max=100000)
    joins_per_second: float | None = doc("joins it accepts per second", min=0.1, max=100000)
    min_uptime: float | None = doc("uptime before it becomes a supernode", unit="duration")
    overload: Literal["busy", "drop-role"] | None = doc(
        "busy: shed load with retry-after; drop-role: the 2010 self-protection")


@dataclass
class OverlaySettings:
    """The reference Skype-like overlay: `login` and `peer` nodes without a command run it."""

    policy: Literal["2007", "fixed"] = field(
        default="2007", metadata={"doc": "client retry policy: 2007 (as measured) or fixed"})
    time_scale: float = field(default=1.0, metadata={
        "doc": "the overlay's clock: durations x time_scale, rates / time_scale (0.1 runs "
               "ten times faster)", "min": 0.001,
        "max": 100})
    seed: int = field(default=2007, metadata={"doc": "seed for credentials, keys and jitter"})
    sn_label: str = field(default="sn_capable", metadata={
        "doc": "label that marks supernode-capable nodes (they must also be public)"})
    login_port: int = field(default=443, metadata={"doc": "login server TCP port", "min": 1,
                                                   "max": 65535})
    metrics_port: int = field(default=9100, metadata={
        "doc": "port of each peer's /metrics on its management address", "min": 1,
        "max": 65535})
    warmup: float = field(default=10.0, metadata={
        "doc": "first boot only: clients log in at a random moment within this, and "
               "supernode-capable nodes serve at once (a lab starts in steady state; restarts "
               "later wait min_uptime)", "unit": "duration"})
    login: LoginCapacity | None = doc("login server capacity")
    supernode: SupernodeCapacity | None = doc("supernode eligibility and capacity")


@dataclass
class TopologyFile:
    """A topology file: `testbed up topologies/NAME.yaml`."""

    name: str | None = doc("lab name: lower-case letters, digits and '-', at most 12 chars")
    description: str | None = doc("free text")
    params: dict[str, Scalar] | None = doc(
        "parameters usable as ${name} or ${expr} in values; override with --set name=value"
    )
    addressing: Addressing | None = doc("address pools")
    defaults: NodeSpec | None = doc("settings every node inherits")
    kinds: dict[str, NodeSpec] | None = doc("settings per node kind")
    groups: dict[str, NodeSpec] | None = doc("named groups of settings; nodes join with group:")
    nodes: dict[str, NodeSpec] | None = doc("the nodes, by name")
    links: list[TopLink] | None = doc("links not declared on a node")
    overlay: OverlaySettings | None = doc("run the reference overlay peer in login/peer nodes")


# ---- the resolved topology (after inheritance, templates and validation) -----------------


@dataclass(frozen=True)
class Link:
    """A resolved link between nodes a and b; shape_ab applies from a to b."""

    a: str
    b: str
    rate_ab: int | None
    rate_ba: int | None
    loss: float | None
    delay: float | None
    jitter: float | None
    queue: int | None
    ip_a: str | None
    ip_b: str | None
    uplink_of_a: bool  # True when this is a's uplink (b is a's gateway side)
    line: int | None = None
    file: str | None = None
    path: str = ""  # where it is declared: nodes.pc.uplink, nodes.pc.links[0] or links[0]
    capture: CaptureOptions | None = field(default=None, compare=False)  # `capture:` on it

    def pin_path(self, end: Literal["a", "b"]) -> str:
        """Key path of the address pinned for end a or b (ip/peer_ip, or ip[0]/ip[1])."""
        if self.path.startswith("links["):
            return f"{self.path}.ip[{0 if end == 'a' else 1}]"
        return f"{self.path}.{'ip' if end == 'a' else 'peer_ip'}"


@dataclass(frozen=True)
class Node:
    """A resolved node, ready for planning."""

    name: str
    kind: str
    group: str | None
    index: int | None
    labels: dict[str, Scalar]
    uplink: str | None
    command: tuple[str, ...] | str | None
    env: dict[str, str]
    lan_pool: str | None
    nat: NatSettings | None
    firewall: FirewallSettings | None
    proxy: ProxySettings | None
    line: int | None = None
    supernode: SupernodeOverride | None = None
    held_back: bool = False
    switch: SwitchSettings | None = None
    registrar: RegistrarSettings | None = None
    sip_ua: SipUaSettings | None = None
    origin: OriginSettings | None = None
    bittorrent: BitTorrentSettings | None = None


@dataclass(frozen=True)
class Topology:
    """What `testbed validate` checks and every backend consumes."""

    name: str
    description: str
    source: str
    params: dict[str, Scalar]
    addressing: Addressing
    nodes: dict[str, Node]
    links: tuple[Link, ...]
    overlay: OverlaySettings | None = None
    # line of every key path as written (after inheritance and replication), for messages
    lines: dict[str, int] = field(default_factory=dict, compare=False, repr=False)

    def nodes_of_kind(self, kind: str) -> list[Node]:
        return [n for n in self.nodes.values() if n.kind == kind]

    def line_of(self, path: str) -> int | None:
        """Line of the key at `path` (e.g. nodes.pc.uplink.to), else of its nearest parent."""
        while path:
            if path in self.lines:
                return self.lines[path]
            cut = max(path.rfind("."), path.rfind("["))
            if cut <= 0:
                return None
            path = path[:cut]
        return None
