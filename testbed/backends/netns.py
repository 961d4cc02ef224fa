"""The local backend: builds a lab from named network namespaces, veths and bridges.

Everything is created with batched iproute2/tc/nft calls (one process per namespace and
tool, never one per command) and journaled before it exists, so labs build fast and
`testbed down` can always clean up. Nothing is created in the machine's own namespace:
bridges live in the lab's fabric namespace (Open vSwitch ones too, run by the lab's own
daemons: backends/ovs.py), the management bridge in its mgmt namespace,
and no namespace has a link to the real network.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from testbed.backends import capacity
from testbed.backends.base import Capabilities, Checkpoint, StateStore, no_check
from testbed.backends.netlink import nft
from testbed.backends.netlink.apply import apply as apply_netlink
from testbed.backends.netlink.node_config import node_config
from testbed.backends.ovs import OvsSwitches
from testbed.backends.ovs import preflight as ovs_preflight
from testbed.errors import BackendError, ProcessError
from testbed.links.shaping import loss_without_netem, nft_loss_table, tc_lines
from testbed.nodes.base import NodeSetup
from testbed.nodes.registry import KindRegistry, default_registry
from testbed.nodes.templating import placeholder_values, render_argv
from testbed.plan.model import NetworkPlan, PlannedNode, Shaping, VethEnd
from testbed.process import commands, namespaces
from testbed.process.launcher import request_fork
from testbed.process.logguard import start_log_guard
from testbed.process.records import ProcessRecord
from testbed.process.settle import check_settled
from testbed.process.supervisor import Supervisor, is_alive, signal_group, stop
from testbed.progress import Progress

T = TypeVar("T")

QUIET_SYSCTLS = {
    # no IPv6 chatter (router solicitations, MLD) in a lab that only speaks IPv4
    "net.ipv6.conf.all.disable_ipv6": "1",
    "net.ipv6.conf.default.disable_ipv6": "1",
}
CHUNK = 200
RUNTIME_LOSS_TABLE = "testbed_loss_runtime"  # extra loss set at run time, one per device
# Packet-level links: a veth hands TCP's 64 KB TSO/GSO super-packets on as one skb, and a
# shaper releases each as one burst (a 700 kbit/s line delivering 45 frames at once).
# One segment per skb makes the stack send wire-sized packets, so shaping is per packet.
NO_GSO = "gso_max_segs 1"


class NetnsBackend:
    name = "netns"

    def __init__(self, registry: KindRegistry | None = None, workers: int = 4) -> None:
        self.registry = registry or default_registry()
        self.workers = workers
        self.supervisor = Supervisor()
        self._netem: bool | None = None
        self._launcher_socket: Path | None = None

    # --- checks ---------------------------------------------------------------------
    def capabilities(self) -> Capabilities:
        return Capabilities(netem=self._have_netem())

    def _have_netem(self) -> bool:
        """Probe once, in a throw-away namespace that vanishes with the probe."""
        if self._netem is None:
            probe = subprocess.run(
                ["unshare", "--net", "tc", "qdisc", "add", "dev", "lo", "root", "netem",
                 "delay", "1ms"], capture_output=True, check=False)
            self._netem = probe.returncode == 0
        return self._netem

    def preflight(self, plan: NetworkPlan, state_dir: Path | None = None) -> None:
        if os.geteuid() != 0:
            raise BackendError("building a lab needs root (network namespaces, links, "
                               "qdiscs): run it with sudo")
        commands.require_tools("ip", "tc", "nft", "unshare", "setpriv")
        capacity.check(plan)  # memory, open files, ARP table, pids: refuse before building
        ovs_preflight(plan)
        taken = [ns for ns in plan.namespaces() if namespaces.exists(ns)]
        if taken:
            raise BackendError(
                f"{len(taken)} namespaces of lab {plan.lab!r} already exist (e.g. {taken[0]}):"
                f" is the lab up already? Run `testbed down {plan.lab}` first")
        netem = self._have_netem()
        for veth in plan.veths:
            for end in (veth.a, veth.b):
                tc_lines(end.name, end.shaping, netem)  # raises MissingKernelFeature
        needs = {s.argv[0] for n in plan.nodes.values() if n.namespace
                 for s in self._setup(n, plan).services}
        if state_dir is not None:  # e.g. the CDN's episodes, on a tmpfs /run/testbed
            capacity.check_disk(plan.lab, {n.name: self._setup(n, plan).disk_bytes
                                           for n in plan.nodes.values() if n.namespace},
                                state_dir)
        for tool in ("tinyproxy", "rtpengine"):  # Debian packages a lab may lack
            if tool in needs:
                commands.require_tools(tool)

    # --- build ----------------------------------------------------------------------
    def build(self, plan: NetworkPlan, state: StateStore, progress: Progress,
              checkpoint: Checkpoint = no_check) -> None:
        start_log_guard(state)  # every journaled service's log stays bounded
        spaces = plan.namespaces()
        progress.stage("namespaces", len(spaces))
        for chunk in _chunks(spaces, CHUNK):
            state.record(*({"op": "netns", "name": ns} for ns in chunk))
            commands.batch("ip", [f"netns add {ns}" for ns in chunk],
                           context="creating network namespaces")
            progress.advance(len(chunk))
        self._parallel(lambda ns: namespaces.write_sysctls(ns, QUIET_SYSCTLS), spaces)

        progress.stage("switches and links", len(plan.veths))
        self._infra(plan)
        ovs = OvsSwitches(plan, state, self.supervisor) if plan.ovs_bridges else None
        if ovs is not None:
            ovs.start()
            ovs.add_bridges()
        for veths in _chunks(plan.veths, CHUNK):
            commands.batch("ip", [_veth_line(v.a, v.b, plan.fabric_namespace) for v in veths],
                           namespace=plan.fabric_namespace, context="creating links")
            progress.advance(len(veths))
        ends = self._ends_by_namespace(plan)
        losses = self._ingress_losses(plan)
        # switch ports shaped while still down: a root qdisc grafted on a device that is
        # up waits for an RCU grace period (see backends/netlink/apply.py)
        self._configure_shared(plan.fabric_namespace, ends.get(plan.fabric_namespace, []),
                               losses.get(plan.fabric_namespace, {}))
        self._bridge_ports(plan, ovs)

        nodes = [n for n in plan.nodes.values() if n.namespace]
        progress.stage("addresses, routes, shaping, firewalls", len(nodes))

        def configure(node: PlannedNode) -> None:
            ns = node.namespace or ""
            self._configure_node(node, plan, ends.get(ns, []), losses.get(ns, {}))
            progress.advance()

        self._parallel(configure, nodes)

        live = [n for n in nodes if not n.node.held_back]
        services = [(n, s) for n in live for s in self._setup(n, plan).services]
        progress.stage("services", len(services))
        started = []
        for node in live:
            started += self.start_services(node, plan, state, progress, checkpoint)
        check_settled(started, {(n.name, s.name): s.settle for n, s in services})

    def _setup(self, node: PlannedNode, plan: NetworkPlan) -> NodeSetup:
        """Once per node and plan: preflight, build and start_services all need it."""
        key = f"setup:{node.name}"
        if key not in plan.memo:
            plan.memo[key] = self.registry.get(node.kind).setup(node, plan)
        setup: NodeSetup = plan.memo[key]
        return setup

    def _infra(self, plan: NetworkPlan) -> None:
        fabric = ["link set lo up"]
        for bridge in plan.bridges:
            if bridge in plan.ovs_bridges:
                continue  # made by the lab's Open vSwitch (OvsSwitches)
            fabric += [f"link add {bridge} type bridge stp_state 0 mcast_snooping 0",
                       f"link set {bridge} up"]
        commands.batch("ip", fabric, namespace=plan.fabric_namespace,
                       context="creating switches")
        mgmt = ["link set lo up"]
        for shard in plan.mgmt_shards:  # bridges of <= 250 ports each (plan/mgmt.py)
            mgmt += [f"link add {shard.bridge} type bridge stp_state 0 mcast_snooping 0",
                     f"addr add {shard.address} dev {shard.bridge}",
                     f"link set {shard.bridge} up"]
        commands.batch("ip", mgmt, namespace=plan.mgmt_namespace,
                       context="creating the management network")

    def _bridge_ports(self, plan: NetworkPlan, ovs: OvsSwitches | None = None) -> None:
        lines: dict[str, list[str]] = defaultdict(list)
        ovs_ports: list[tuple[str, str]] = []
        senders: list[VethEnd] = []  # what transmits into an OVS port
        for veth in plan.veths:
            for end, other in ((veth.a, veth.b), (veth.b, veth.a)):
                if end.bridge and end.bridge in plan.ovs_bridges:
                    ovs_ports.append((end.bridge, end.name))
                    senders.append(other)
                    lines[end.namespace].append(f"link set {end.name} up")
                elif end.bridge:
                    lines[end.namespace].append(f"link set {end.name} master {end.bridge} up")
                    if end.isolated:
                        lines[end.namespace].append(
                            f"link set {end.name} type bridge_slave isolated on")
        for ns, batch in lines.items():
            commands.batch("ip", batch, namespace=ns, context="attaching switch ports")
        if ovs is not None and ovs_ports:
            ovs.add_ports(ovs_ports)
            # OVS's userspace datapath reads packets as they were handed to the veth: one
            # left for the NIC to checksum (TX offload) would arrive with a bad TCP/UDP
            # checksum, so whatever sends into an OVS port checksums in software
            self._parallel(_software_checksums, senders)

    def _ends_by_namespace(self, plan: NetworkPlan) -> dict[str, list[VethEnd]]:
        ends: dict[str, list[VethEnd]] = defaultdict(list)
        for veth in plan.veths:
            for end in (veth.a, veth.b):
                if not end.shaping.is_empty():
                    ends[end.namespace].append(end)
        return ends

    def _ingress_losses(self, plan: NetworkPlan) -> dict[str, dict[str, float]]:
        """Without netem, an end's egress loss is dropped where its veth peer receives
        (namespace -> {device: loss}): silent for the sender, as on a real line."""
        netem = self._have_netem()
        losses: dict[str, dict[str, float]] = defaultdict(dict)
        for veth in plan.veths:
            for sender, receiver in ((veth.a, veth.b), (veth.b, veth.a)):
                loss = loss_without_netem(sender.shaping, netem)
                if loss is not None:
                    losses[receiver.namespace][receiver.name] = loss
        return losses

    def _shaping(self, ends: Iterable[VethEnd]) -> list[str]:
        netem = self._have_netem()
        return [line for end in ends for line in tc_lines(end.name, end.shaping, netem)]

    def _configure_shared(self, ns: str, ends: list[VethEnd], losses: dict[str, float]
                          ) -> None:
        tc, loss_table = self._shaping(ends), nft_loss_table(losses)
        commands.batch("tc", tc, namespace=ns, context=f"shaping switch ports in {ns}")
        if loss_table:
            commands.run(["ip", "netns", "exec", ns, "nft", "-f", "-"], stdin=loss_table,
                         context=f"link loss in {ns}")

    def _configure_node(self, node: PlannedNode, plan: NetworkPlan,
                        ends: list[VethEnd], losses: dict[str, float]) -> None:
        """Addresses, links, routes and HTB shaping through netlink from this process
        (backends/netlink/); netem (delay, jitter, its loss) and nft rules through tools."""
        ns = node.namespace or ""
        config = node_config(node, ends)
        netem = self._have_netem() and config.needs_netem()
        if netem:
            config.shaping = []
        apply_netlink(config)
        if netem:
            commands.batch("tc", self._shaping(ends), namespace=ns,
                           context=f"shaping links of {node.name}")
        setup = self._setup(node, plan)
        ruleset = setup.nft_ruleset + nft_loss_table(losses)
        if ruleset and nft.available():
            nft.load(ns, ruleset, context=f"firewall/NAT rules of {node.name}")
        elif ruleset:
            commands.run(["ip", "netns", "exec", ns, "nft", "-f", "-"], stdin=ruleset,
                         context=f"firewall/NAT rules of {node.name}")
        namespaces.write_sysctls(ns, setup.sysctls)

    def start_services(self, node: PlannedNode, plan: NetworkPlan, state: StateStore,
                       progress: Progress | None = None, checkpoint: Checkpoint = no_check
                       ) -> list[ProcessRecord]:
        """Start a node's services (at `up`, and again when a scenario restarts the node:
        files already in its state directory, such as a host cache, are kept)."""
        setup = self._setup(node, plan)
        node_dir = state.node_dir(node.name)
        started: list[ProcessRecord] = []
        if not setup.files and not setup.services:
            return started
        node_dir.mkdir(parents=True, exist_ok=True)
        for name, content in setup.files.items():
            (node_dir / name).write_text(content)
        values = placeholder_values(node, plan, str(node_dir))
        for service in setup.services:
            log = node_dir / f"{service.name}.log"
            if service.peer_config:
                pid, began = request_fork(self._launcher(plan, state),
                                          namespace=node.namespace or "",
                                          config=node_dir / service.peer_config, log=log,
                                          cwd=node_dir)
                record = ProcessRecord(node.name, service.name, pid, began,
                                       node.namespace or "", str(log))
            else:
                record = self.supervisor.start(
                    node=node.name, service=service.name, namespace=node.namespace or "",
                    argv=render_argv(service.argv, values), env=service.env, cwd=node_dir,
                    log=log)
            state.record({"op": "process", **record.__dict__})
            started.append(record)
            checkpoint()  # the fork's at-fork hooks may have dropped a Ctrl-C
            if progress:
                progress.advance()
        return started

    def _launcher(self, plan: NetworkPlan, state: StateStore) -> Path:
        """The lab's pre-forking peer launcher, started on first use in the lab's
        management namespace and journaled like any service."""
        socket_path = state.dir / "launcher.sock"
        if self._launcher_socket is None and _answers(socket_path):
            self._launcher_socket = socket_path  # started by the command that built the lab
        if self._launcher_socket is None:
            record = self.supervisor.start(
                node="", service="launcher", namespace=plan.mgmt_namespace,
                argv=(sys.executable, "-m", "testbed.process.launcher", "--socket",
                      str(socket_path)),
                env={}, cwd=state.dir, log=state.dir / "launcher.log")
            state.record({"op": "process", **record.__dict__})
            deadline = time.monotonic() + 30
            while not socket_path.exists():
                if time.monotonic() > deadline or not is_alive(record):
                    raise ProcessError(f"the peer launcher did not start; see "
                                       f"{state.dir / 'launcher.log'}")
                time.sleep(0.05)
            self._launcher_socket = socket_path
        return self._launcher_socket

    def start_process(self, node: str, service: str, namespace: str, argv: Sequence[str],
                      env: Mapping[str, str], cwd: Path, log: Path) -> ProcessRecord:
        return self.supervisor.start(node=node, service=service, namespace=namespace,
                                     argv=tuple(argv), env=env, cwd=cwd, log=log)

    def stop_processes(self, records: Sequence[ProcessRecord], grace: float | None
                       ) -> None:
        if grace is not None:
            stop(records, grace=grace, supervisor=self.supervisor)
        else:
            for record in records:
                signal_group(record, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and any(is_alive(r) for r in records):
            self.supervisor.reap()
            time.sleep(0.01)

    # --- links and rules at run time --------------------------------------------------
    def set_links(self, node: PlannedNode, up: bool) -> None:
        state = "up" if up else "down"
        lines = [f"link set dev {i.name} {state}" for i in node.interfaces]
        if up:
            lines += [f"route replace {r.destination} via {r.via}" for r in node.routes]
        commands.batch("ip", lines, namespace=node.namespace or "",
                       context=f"{node.name}: links {state}")

    def set_link_end(self, end: VethEnd, up: bool) -> None:
        commands.batch("ip", [f"link set dev {end.name} {'up' if up else 'down'}"],
                       namespace=end.namespace, context=f"link {end.name}")

    def shape(self, end: VethEnd, shaping: Shaping, receiver: VethEnd,
              loss: float | None) -> None:
        netem = self._have_netem()
        commands.run(["ip", "netns", "exec", end.namespace, "tc", "qdisc", "del", "dev",
                      end.name, "root"], check=False, context="clearing qdiscs")
        commands.batch("tc", tc_lines(end.name, shaping, netem), namespace=end.namespace,
                       context=f"shaping {end.name}")
        # extra loss is dropped where the far end receives, in a table of its own
        table = f"{RUNTIME_LOSS_TABLE}_{_safe(receiver.name)}"
        self.remove_rules(receiver.namespace, "netdev", table)
        if loss:
            ruleset = nft_loss_table({receiver.name: loss}).replace(
                "table netdev testbed_loss", f"table netdev {table}", 1)
            self.apply_rules(receiver.namespace, ruleset, f"loss on {receiver.name}")

    def apply_rules(self, namespace: str, ruleset: str, context: str) -> None:
        commands.run(["ip", "netns", "exec", namespace, "nft", "-f", "-"], stdin=ruleset,
                     context=context)

    def remove_rules(self, namespace: str, family: str, table: str) -> None:
        commands.run(["ip", "netns", "exec", namespace, "nft", "delete", "table", family,
                      table], check=False, context=f"removing nft table {table}")

    # --- commands -----------------------------------------------------------------------
    def run(self, namespace: str, argv: Sequence[str], timeout: float | None = 30.0,
            stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["ip", "netns", "exec", namespace, *argv], input=stdin,
                              capture_output=True, text=True, timeout=timeout, check=False)

    def popen(self, namespace: str, argv: Sequence[str], **kwargs: Any
              ) -> subprocess.Popen[str]:
        kwargs.setdefault("text", True)
        return subprocess.Popen(["ip", "netns", "exec", namespace, *argv], **kwargs)

    def _parallel(self, work: Callable[[T], None], items: Sequence[T]) -> None:
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            for future in [pool.submit(work, item) for item in items]:
                future.result()  # re-raises the first failure

    # --- teardown -------------------------------------------------------------------
    def teardown(self, state: StateStore, progress: Progress) -> list[str]:
        from testbed.backends.cleanup import clean

        return clean(state, progress, self.supervisor)


def _answers(socket_path: Path) -> bool:
    """Whether a launcher listens on this socket (a later command reusing the lab's)."""
    if not socket_path.exists():
        return False
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(str(socket_path))
        except OSError:
            return False
    return True


def _veth_line(a: VethEnd, b: VethEnd, here: str) -> str:
    a_ns = "" if a.namespace == here else f" netns {a.namespace}"
    b_ns = "" if b.namespace == here else f" netns {b.namespace}"
    return (f"link add name {a.name}{a_ns} {NO_GSO} type veth peer name {b.name}{b_ns} "
            f"{NO_GSO}")


def _software_checksums(end: VethEnd) -> None:
    commands.run(["ip", "netns", "exec", end.namespace, "ethtool", "-K", end.name, "tx", "off"],
                 context=f"checksums in software on {end.name}")


def _safe(device: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in device)


def _chunks(items: Sequence[T], size: int) -> list[Sequence[T]]:
    return [items[i:i + size] for i in range(0, len(items), size)]
