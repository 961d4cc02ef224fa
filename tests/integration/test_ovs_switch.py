"""Open vSwitch switches (`switch: {type: ovs}`): the lab's own ovsdb-server and
ovs-vswitchd in its fabric namespace forward real traffic between hosts; port shaping
still applies; their own log files stay bounded; `testbed down` stops the daemons; the
machine's own OVS is never used."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import run_cli, unique_lab_name
from tests.integration.test_bandwidth import rate, within

pytestmark = pytest.mark.root

TOPOLOGY = """
nodes:
  core: {kind: router}
  lan: {kind: switch, switch: {type: ovs}, uplink: {to: core}}
  a: {kind: host, uplink: {to: lan, bandwidth: 2Mbit}}
  b: {kind: host, uplink: {to: lan}}
  c: {kind: host, uplink: {to: core}}
"""


def _gone(pid: int) -> bool:
    """Exited (a zombie waiting for init to reap it counts: it no longer runs)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


def _ovs_processes(lab) -> list[str]:  # noqa: ANN001
    return [r.service for r in lab.state.read().processes
            if r.service in ("ovsdb-server", "ovs-vswitchd")]


def test_hosts_on_an_ovs_switch_talk_through_open_vswitch(make_lab) -> None:
    lab = make_lab(TOPOLOGY)
    assert _ovs_processes(lab) == ["ovsdb-server", "ovs-vswitchd"]
    for target in ("b", "c"):  # same segment, and routed beyond the switch
        ping = lab.exec("a", "ping", "-c", "2", "-W", "2", lab.addr(target))
        assert ping.returncode == 0, ping.stdout + ping.stderr
    fabric = lab.plan.fabric_namespace
    socket = lab.state.dir / "ovs" / "db.sock"
    vsctl = ["ip", "netns", "exec", fabric, "ovs-vsctl", f"--db=unix:{socket}"]
    (bridge,) = subprocess.run([*vsctl, "list-br"], capture_output=True, text=True,
                               check=True).stdout.split()
    ports = subprocess.run([*vsctl, "list-ports", bridge], capture_output=True, text=True,
                           check=True).stdout.split()
    assert len(ports) == 3  # a, b and the switch's uplink to core
    datapath = subprocess.run([*vsctl, "get", "bridge", bridge, "datapath_type"],
                              capture_output=True, text=True, check=True).stdout.strip()
    assert datapath == "netdev"
    # it is not a Linux bridge: the kernel has no bridge of that name in the fabric
    linux = subprocess.run(["ip", "-n", fabric, "-d", "link", "show", "type", "bridge"],
                           capture_output=True, text=True, check=True).stdout
    assert f" {bridge}:" not in linux
    # the MAC table OVS learnt holds the hosts that just talked
    fdb = subprocess.run(["ip", "netns", "exec", fabric, "ovs-appctl", "-t",
                          str(lab.state.dir / "ovs" / "ovs-vswitchd.ctl"), "fdb/show", bridge],
                         capture_output=True, text=True, check=True).stdout
    assert len(fdb.strip().splitlines()) >= 3, fdb  # header + a + b (or the router)


def test_a_host_rebooted_on_an_ovs_switch_is_reachable_again(make_lab) -> None:
    """A reboot takes the host's link down and up: OVS keeps forwarding for it after."""
    from testbed.lab.runtime import LabRuntime

    lab = make_lab(TOPOLOGY)
    runtime = LabRuntime(lab.plan, lab.state, lab.backend)
    runtime.host_down("a", "hard")
    assert lab.exec("b", "ping", "-c", "1", "-W", "1", lab.addr("a")).returncode != 0
    runtime.host_up("a")
    ping = lab.exec("b", "ping", "-c", "3", "-W", "2", lab.addr("a"))
    assert ping.returncode == 0, ping.stdout + ping.stderr


def test_open_vswitchs_own_log_files_are_rotated_by_the_labs_log_guard(
        make_lab, monkeypatch) -> None:  # noqa: ANN001
    """OVS writes its log to a file of its own (--log-file), not to the service's
    stdout: the lab's log guard rotates it past the cap like any service log."""
    cap = 100  # below what each daemon writes as it starts (~150 bytes)
    monkeypatch.setenv("TESTBED_LOG_MAX_BYTES", str(cap))
    lab = make_lab(TOPOLOGY)
    logs = [lab.state.dir / "ovs" / f"{name}.log" for name in ("ovsdb-server",
                                                                "ovs-vswitchd")]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not all(
            log.with_name(log.name + ".1").exists() for log in logs):
        time.sleep(0.2)
    files = {p.name: p.stat().st_size for p in (lab.state.dir / "ovs").glob("*.log*")}
    for log in logs:
        assert files.get(log.name + ".1", 0) > cap, files
        assert log.read_bytes()[:1] != b"\0"  # OVS appends: no hole where it was cut
    ping = lab.exec("a", "ping", "-c", "1", "-W", "2", lab.addr("b"))
    assert ping.returncode == 0, ping.stdout + ping.stderr  # OVS carried on


def test_port_shaping_applies_on_an_ovs_switch(make_lab) -> None:
    lab = make_lab(TOPOLOGY)
    measured = rate(lab, "a", "b", 5, 2_000_000)
    assert within(measured, 2_000_000), f"{measured / 1e6:.2f} Mbit/s through OVS, 2 wanted"


def test_down_stops_the_labs_open_vswitch(tmp_path: Path, state_root: Path) -> None:
    name = unique_lab_name("ovs")
    topology = tmp_path / "t.yaml"
    topology.write_text(f"name: {name}\n{TOPOLOGY}")
    assert run_cli("up", str(topology), "--quiet", state_dir=state_root).returncode == 0
    journal = (state_root / name / "journal.jsonl").read_text()
    pids = [int(line.split('"pid": ')[1].split(",")[0]) for line in journal.splitlines()
            if '"service": "ovs' in line]
    assert len(pids) == 2
    assert all(Path(f"/proc/{pid}").exists() for pid in pids)
    down = run_cli("down", name, "--quiet", state_dir=state_root)
    assert down.returncode == 0, down.stderr
    assert all(_gone(pid) for pid in pids)
    assert not (state_root / name).exists()


def test_the_system_datapath_is_refused_clearly_where_the_module_is_missing(
        tmp_path: Path, state_root: Path) -> None:
    if Path("/sys/module/openvswitch").exists():
        pytest.skip("the openvswitch module is loaded here: datapath system is used")
    name = unique_lab_name("ovk")
    topology = tmp_path / "t.yaml"
    topology.write_text(f"name: {name}\n" + TOPOLOGY.replace("{type: ovs}",
                                                             "{type: ovs, datapath: system}"))
    result = run_cli("up", str(topology), state_dir=state_root)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "openvswitch kernel module" in result.stderr and "datapath: netdev" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (state_root / name).exists()
