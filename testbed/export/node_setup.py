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
PIECE = 30_000  # characters of file content (or ruleset) in one exec line
BATCH_ABOVE = 32  # more ip (or tc) lines than this in a node: one -batch file


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


def write_file(directory: str, name: str, content: str) -> list[str]:
    """Lines that write `content` to <directory>/<name>, in pieces well below Linux's
    128 KiB limit on one argument (a login server's user list grows with the lab)."""
    path = shlex.quote(f"{directory}/{name}")
    pieces = [content[i:i + PIECE] for i in range(0, len(content), PIECE)] or [""]
    lines = []
    for k, piece in enumerate(pieces):
        first = k == 0
        script = (f"{'mkdir -p ' + shlex.quote(directory) + ' && ' if first else ''}"
                  f"printf %s {shlex.quote(piece)} {'>' if first else '>>'} {path}")
        lines.append("sh -c " + shlex.quote(script))
    return lines


def batch(tool: str, lines: list[str], directory: str, name: str, above: int) -> list[str]:
    """`tool LINE` each, or past `above` lines one `tool -batch FILE` (a core router with
    thousands of links would otherwise take thousands of exec round trips)."""
    if len(lines) <= above:
        return [f"{tool} {line}" for line in lines]
    return [*write_file(directory, name, "\n".join(lines) + "\n"),
            f"{tool} -batch {shlex.quote(directory + '/' + name)}"]


def nft(ruleset: str, directory: str) -> list[str]:
    if len(ruleset) <= PIECE:
        return ["nft " + shlex.quote(ruleset)]
    return [*write_file(directory, "rules.nft", ruleset),
            f"nft -f {shlex.quote(directory + '/rules.nft')}"]


def sysctl(values: dict[str, str]) -> str:
    return "sysctl -qw " + " ".join(f"{k}={v}" for k, v in sorted(values.items()))


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
                  links: NodeLinks, state_dir: str, python: str = "python3",
                  batch_above: int = BATCH_ABOVE) -> list[str]:
    """Everything the netns backend does for `node`, in the same order."""
    mgmt = node.mgmt_interface or "eth0"
    ip = []
    for iface in node.interfaces:
        if iface.address:
            ip.append(f"addr add {iface.address} dev {iface.name}")
        ip.append(f"link set {iface.name} up")
    ip += [f"route add {r.destination} via {r.via}" for r in node.routes]
    lines = [QUIET, DROP_MGMT_DEFAULT]
    lines += batch("ip", ip, state_dir, "ip.batch", batch_above)
    lines += batch("tc", links.tc, state_dir, "tc.batch", batch_above)
    lines += nft(setup.nft_ruleset + nft_loss_table(links.losses) + mgmt_guard(mgmt), state_dir)
    if setup.sysctls:
        lines.append(sysctl(setup.sysctls))
    for name, content in setup.files.items():
        lines += write_file(state_dir, name, content)
    if setup.services and not setup.files:
        lines.append("mkdir -p " + shlex.quote(state_dir))
    values = placeholder_values(node, plan, state_dir)
    for service in setup.services:
        argv = render_argv(service.argv, values)
        if argv and argv[0] == sys.executable:  # the reference peer: the image's python
            argv = (python, *argv[1:])
        lines.append(start_service(state_dir, service.name, argv, service.env))
    return lines


def switch_commands(ports: list[str], links: NodeLinks, state_dir: str, mgmt: str = "eth0",
                    batch_above: int = BATCH_ABOVE) -> list[str]:
    """A switch is a node holding one Linux bridge over all its ports."""
    ip = [f"link add {BRIDGE} type bridge stp_state 0 mcast_snooping 0",
          f"link set {BRIDGE} up", *(f"link set {port} master {BRIDGE} up" for port in ports)]
    return [QUIET, DROP_MGMT_DEFAULT, *batch("ip", ip, state_dir, "ip.batch", batch_above),
            *batch("tc", links.tc, state_dir, "tc.batch", batch_above),
            *nft(nft_loss_table(links.losses) + mgmt_guard(mgmt), state_dir)]
