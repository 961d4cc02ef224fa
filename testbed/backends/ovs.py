"""Open vSwitch switches (`switch: {type: ovs}`): one private ovsdb-server and ovs-vswitchd
per lab, started in the lab's fabric namespace with their database, sockets and logs in
the lab's state directory. The machine's own Open vSwitch (if any) is never touched, and
`testbed down` stops the two daemons by their journaled pids like any service.

Datapaths: `netdev` is OVS's userspace datapath (packets cross ovs-vswitchd; works on any
kernel, this project's CI uses it); `system` is the openvswitch kernel module's (the lab
VM loads it), refused before anything is built where the module is not loaded.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path

from testbed.backends.base import StateStore
from testbed.errors import BackendError, MissingKernelFeature
from testbed.plan.model import NetworkPlan
from testbed.process import commands
from testbed.process.logguard import journal_log
from testbed.process.records import ProcessRecord
from testbed.process.supervisor import Supervisor, is_alive

TOOLS = ("ovsdb-tool", "ovsdb-server", "ovs-vswitchd", "ovs-vsctl", "ethtool")
SCHEMAS = (Path("/usr/share/openvswitch/vswitch.ovsschema"),
           Path("/usr/local/share/openvswitch/vswitch.ovsschema"))
KERNEL_MODULE = Path("/sys/module/openvswitch")
READY_SECONDS = 15.0
PER_CALL = 200  # ports per ovs-vsctl call


def preflight(plan: NetworkPlan) -> None:
    """What OVS switches need, checked before anything is built."""
    if not plan.ovs_bridges:
        return
    commands.require_tools(*TOOLS)
    _schema()
    if "system" in plan.ovs_bridges.values() and not KERNEL_MODULE.exists():
        raise MissingKernelFeature(
            "a switch asks for switch.datapath: system, which needs the openvswitch kernel "
            "module, and it is not loaded here (modprobe openvswitch fails on this kernel). "
            "Use datapath: netdev (OVS's userspace datapath), or run in the lab VM.")


def _schema() -> Path:
    found = next((p for p in SCHEMAS if p.is_file()), None)
    if found is None:
        raise BackendError("Open vSwitch's database schema (vswitch.ovsschema) is missing; "
                           "reinstall openvswitch-common (scripts/setup.sh)")
    return found


class OvsSwitches:
    """The lab's own Open vSwitch: start it, then add bridges and ports."""

    def __init__(self, plan: NetworkPlan, state: StateStore, supervisor: Supervisor) -> None:
        self.plan = plan
        self.state = state
        self.supervisor = supervisor
        self.dir = state.dir / "ovs"
        self.socket = self.dir / "db.sock"

    def start(self) -> list[ProcessRecord]:
        self.dir.mkdir(parents=True, exist_ok=True)
        database = self.dir / "conf.db"
        schema = _schema()
        database.unlink(missing_ok=True)
        commands.run(["ovsdb-tool", "create", str(database), str(schema)],
                     context="creating the lab's Open vSwitch database")
        server = self._daemon("ovsdb-server", str(database), f"--remote=punix:{self.socket}",
                              f"--unixctl={self.dir / 'ovsdb-server.ctl'}")
        self._wait(lambda: self.socket.exists(), server, "ovsdb-server to open its socket")
        self.vsctl(["--no-wait", "init"], "initialising the Open vSwitch database")
        switch = self._daemon("ovs-vswitchd", f"unix:{self.socket}",
                              f"--unixctl={self.dir / 'ovs-vswitchd.ctl'}")
        self._wait(lambda: (self.dir / "ovs-vswitchd.ctl").exists(), switch,
                   "ovs-vswitchd to start")
        return [server, switch]

    def add_bridges(self) -> None:
        args: list[str] = []
        for bridge, datapath in self.plan.ovs_bridges.items():
            args += ["--", "add-br", bridge, "--", "set", "bridge", bridge,
                     f"datapath_type={datapath}"]
        # without --no-wait ovs-vsctl returns once ovs-vswitchd has made the bridges
        self.vsctl(args[1:], "creating Open vSwitch bridges")

    def add_ports(self, ports: Sequence[tuple[str, str]]) -> None:
        """(bridge, port) pairs; the ports are veth ends in the fabric namespace."""
        for start in range(0, len(ports), PER_CALL):
            args: list[str] = []
            for bridge, port in ports[start:start + PER_CALL]:
                args += ["--", "add-port", bridge, port]
            self.vsctl(args[1:], "attaching Open vSwitch ports")

    def vsctl(self, args: list[str], context: str) -> str:
        return commands.run(["ip", "netns", "exec", self.plan.fabric_namespace, "ovs-vsctl",
                             f"--db=unix:{self.socket}", f"--timeout={int(READY_SECONDS)}",
                             *args], context=context).stdout

    def _daemon(self, name: str, *args: str) -> ProcessRecord:
        log = self.dir / f"{name}.log"  # its own log file, bounded by the lab's log guard
        journal_log(self.state, log)
        record = self.supervisor.start(
            node="", service=name, namespace=self.plan.fabric_namespace,
            argv=(name, *args, f"--log-file={log}"),
            env={"OVS_RUNDIR": str(self.dir), "OVS_LOGDIR": str(self.dir),
                 "OVS_DBDIR": str(self.dir)},
            cwd=self.dir, log=self.dir / f"{name}.out")
        self.state.record({"op": "process", **record.__dict__})
        return record

    def _wait(self, ready: Callable[[], bool], record: ProcessRecord, what: str) -> None:
        deadline = time.monotonic() + READY_SECONDS
        while not ready():
            if not is_alive(record):
                raise BackendError(f"{record.service} exited while waiting for {what}: "
                                   f"{_tail(Path(record.log))}")
            if time.monotonic() > deadline:
                raise BackendError(f"timed out after {READY_SECONDS:g}s waiting for {what} "
                                   f"(log: {record.log})")
            time.sleep(0.05)


def _tail(path: Path, lines: int = 5) -> str:
    try:
        return " | ".join(path.read_text(errors="replace").strip().splitlines()[-lines:])
    except OSError:
        return "(no log)"
