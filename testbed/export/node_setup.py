"""The commands that set one exported node up, as containerlab `exec` lines.

They are what the netns backend applies (backends/netns.py), written as commands: the
same addresses and routes from the plan, the same tc lines (links/shaping.py), the same
nftables rulesets (nodes/nat.py, nodes/firewall.py via the kinds' setup) and sysctls,
the same service command lines. Each line is split by containerlab like a POSIX shell
would (no shell runs it), so anything needing a shell is wrapped in `sh -c '...'`.
"""

from __future__ import annotations

import shlex
import sys
from dataclasses import dataclass, field

from testbed.links.shaping import nft_loss_table, tc_lines
from testbed.nodes.base import NodeSetup
from testbed.nodes.templating import placeholder_values, render_argv
from testbed.plan.model import NetworkPlan, PlannedNode, Shaping

QUIET = "sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1"
# containerlab (docker) gives every node a default route over its management interface:
# the emulated network must carry the default route, so it goes first
DROP_MGMT_DEFAULT = "sh -c 'ip route del default 2>/dev/null; true'"
BRIDGE = "br0"


@dataclass(frozen=True)
class Port:
    """One end of an exported link, inside one exported node."""

    node: str
    interface: str
    shaping: Shaping = Shaping()


@dataclass
class NodeLinks:
    """What the links need inside one node: egress shaping and ingress loss."""

    tc: list[str] = field(default_factory=list)
    losses: dict[str, float] = field(default_factory=dict)  # interface -> loss arriving


def mgmt_guard(mgmt: str) -> str:
    """Management answers, never initiates: what bridge port isolation does natively
    (a node cannot reach another node, or anything else, over the management network)."""
    return ("table inet testbed_mgmt {\n  chain output {\n"
            "    type filter hook output priority filter; policy accept;\n"
            f'    oifname "{mgmt}" ct state new drop\n  }}\n}}\n')


def link_setup(a: Port, b: Port, per_node: dict[str, NodeLinks]) -> None:
    """Shaping of one link, both directions: tc on each sender's egress (netem only where
    delay/jitter is asked), loss without netem dropped where the other end receives."""
    for sender, receiver in ((a, b), (b, a)):
        netem = sender.shaping.delay is not None or sender.shaping.jitter is not None
        per_node.setdefault(sender.node, NodeLinks()).tc += tc_lines(
            sender.interface, sender.shaping, netem)
        if sender.shaping.loss is not None and not netem:
            per_node.setdefault(receiver.node, NodeLinks()).losses[receiver.interface] = \
                sender.shaping.loss


def nft(ruleset: str) -> str:
    return "nft " + shlex.quote(ruleset)


def sysctl(values: dict[str, str]) -> str:
    return "sysctl -qw " + " ".join(f"{k}={v}" for k, v in sorted(values.items()))


def write_file(directory: str, name: str, content: str) -> str:
    script = (f"mkdir -p {shlex.quote(directory)} && printf %s {shlex.quote(content)} > "
              f"{shlex.quote(directory + '/' + name)}")
    return "sh -c " + shlex.quote(script)


def start_service(directory: str, name: str, argv: tuple[str, ...], env: dict[str, str]
                  ) -> str:
    """In the background, detached (containerlab waits for each exec line to end), its
    output in <state dir>/<service>.log as in the native lab."""
    envs = " ".join(shlex.quote(f"{k}={v}") for k, v in sorted(env.items()))
    command = " ".join(shlex.quote(a) for a in argv)
    log = shlex.quote(f"{directory}/{name}.log")
    script = (f"cd {shlex.quote(directory)} && exec {'env ' + envs + ' ' if envs else ''}"
              f"setsid -f {command} > {log} 2>&1 < /dev/null")
    return "sh -c " + shlex.quote(script)


def host_commands(node: PlannedNode, plan: NetworkPlan, setup: NodeSetup,
                  links: NodeLinks, state_dir: str, python: str = "python3") -> list[str]:
    """Everything the netns backend does for `node`, in the same order."""
    mgmt = node.mgmt_interface or "eth0"
    lines = [QUIET]
    for iface in node.interfaces:
        if iface.address:
            lines.append(f"ip addr add {iface.address} dev {iface.name}")
        lines.append(f"ip link set {iface.name} up")
    lines.append(DROP_MGMT_DEFAULT)
    lines += [f"ip route add {r.destination} via {r.via}" for r in node.routes]
    lines += [f"tc {line}" for line in links.tc]
    ruleset = setup.nft_ruleset + nft_loss_table(links.losses) + mgmt_guard(mgmt)
    lines.append(nft(ruleset))
    if setup.sysctls:
        lines.append(sysctl(setup.sysctls))
    for name, content in setup.files.items():
        lines.append(write_file(state_dir, name, content))
    if setup.services and not setup.files:
        lines.append("mkdir -p " + shlex.quote(state_dir))
    values = placeholder_values(node, plan, state_dir)
    for service in setup.services:
        argv = render_argv(service.argv, values)
        if argv and argv[0] == sys.executable:  # the reference peer: the image's python
            argv = (python, *argv[1:])
        lines.append(start_service(state_dir, service.name, argv, service.env))
    return lines


def switch_commands(ports: list[str], links: NodeLinks, mgmt: str = "eth0") -> list[str]:
    """A switch is a node holding one Linux bridge over all its ports."""
    lines = [QUIET, f"ip link add {BRIDGE} type bridge stp_state 0 mcast_snooping 0",
             f"ip link set {BRIDGE} up"]
    lines += [f"ip link set {port} master {BRIDGE} up" for port in ports]
    lines.append(DROP_MGMT_DEFAULT)
    lines += [f"tc {line}" for line in links.tc]
    lines.append(nft(nft_loss_table(links.losses) + mgmt_guard(mgmt)))
    return lines
