"""Proof of the containerlab export without containerlab: the exported file alone is
built as containerlab would build it (clab_replay.py: namespaces, management eth0 with
docker's default route, veths, exactly the exported exec lines), then the same NAT-type,
proxy-only and reachability checks as the native lab run on it."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from testbed.export.containerlab import ExportOptions, export_containerlab
from testbed.plan.build import build_plan
from testbed.topology.loader import load_topology
from tests.conftest import run_cli, unique_lab_name
from tests.integration.clab_replay import ReplayLab
from tests.integration.nat_checks import NatLab, check_filtering, check_mapping, nat_topology
from tests.integration.site_checks import (
    CORP_SITE,
    check_proxy_only_egress,
    check_reachable,
    check_udp_blocked,
)

pytestmark = [pytest.mark.root, pytest.mark.slow]

TYPES = ("full-cone", "port-restricted-cone", "symmetric")
SERVICE_PORT = 8081
# the reference overlay: pc1 (a peer in the proxy-only site) logs in to `login` and joins
# the supernode sn1, all through the proxy
OVERLAY = """
overlay:
  policy: fixed
  time_scale: 0.1
  warmup: 2s
  supernode: {min_uptime: 1s}
"""
TOPOLOGY = OVERLAY + "nodes:" + nat_topology(
    TYPES, core="{kind: router, uplink: {to: internet}}") + CORP_SITE + f"""
  svc:
    kind: host
    uplink: {{to: internet, up: 10Mbit, down: 20Mbit, queue: 50}}
    command: python3 -m http.server {SERVICE_PORT} --bind {{addr}}
  login: {{kind: login, uplink: {{to: internet}}}}
  sn1: {{kind: peer, labels: {{sn_capable: true}}, uplink: {{to: internet, bandwidth: 10Mbit}}}}
"""


@pytest.fixture(scope="module", params=["containerlab", "clabernetes"])
def replay(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[tuple[ReplayLab, Path]]:
    """The export replayed, in each format: stage execs in wait-for order, or (for
    clabernetes) plain exec lines with nothing ordering one node after another."""
    name = unique_lab_name("cr")
    root = Path(tmp_path_factory.mktemp("clab-replay"))
    source = root / f"{name}.yaml"
    source.write_text(f"name: {name}\n{TOPOLOGY}")
    topology = load_topology(source)
    state_root = root / "state"
    export = export_containerlab(topology, build_plan(topology),
                                 ExportOptions(state_root=str(state_root), batch_above=4,
                                               flavour=request.param))
    path = root / f"{name}.clab.yml"
    path.write_text(export.dump())
    lab = ReplayLab(path)
    try:
        lab.build()
        yield lab, state_root
    finally:
        lab.down()


@pytest.fixture(scope="module")
def nat_lab(replay: tuple[ReplayLab, Path]) -> Iterator[NatLab]:
    nat_lab = NatLab(replay[0])
    yield nat_lab
    nat_lab.close()


@pytest.mark.parametrize("nat_type", TYPES)
def test_nat_types_behave_as_in_the_native_lab(nat_lab: NatLab, nat_type: str) -> None:
    check_mapping(nat_lab, nat_type)
    check_filtering(nat_lab, nat_type)


def test_proxy_only_site_gets_out_only_through_its_proxy(replay: tuple[ReplayLab, Path],
                                                       tmp_path: Path) -> None:
    lab, state_root = replay
    check_proxy_only_egress(lab, tmp_path, state_root / "corp-proxy" / "tinyproxy.log")
    check_udp_blocked(lab)


def test_reachability_over_the_emulated_network_never_management(
        replay: tuple[ReplayLab, Path]) -> None:
    lab, _ = replay
    check_reachable(lab, [("s1", "web"), ("web", "s1"), ("pc-symmetric", "web"),
                          ("pc-full-cone", "s2"), ("pc1", "corp-proxy"), ("corp-proxy", "web"),
                          ("svc", "outsider")])
    for node in lab.nodes:
        default = lab.exec(node, "ip", "route", "show", "default").stdout
        assert "eth0" not in default, f"{node} routes by default over management: {default}"
    # the core router has no default route at all: private realms stay unreachable
    assert lab.exec("internet", "ip", "route", "get", lab.addr("pc1")).returncode != 0
    # management answers the management side (Prometheus' place) ...
    for node in ("s1", "pc-symmetric", "corp-lan"):
        ping = subprocess.run(["ip", "netns", "exec", lab.mgmt_namespace, "ping", "-c", "1",
                               "-W", "2", lab.mgmt_addr(node)], capture_output=True)
        assert ping.returncode == 0, f"{node} does not answer on management"
    # ... but no node reaches another over it
    leak = lab.exec("pc-symmetric", "ping", "-c", "1", "-W", "1", lab.mgmt_addr("s1"))
    assert leak.returncode != 0, "a node reached another node over management"


def test_the_exported_service_runs_with_its_placeholders_filled(
        replay: tuple[ReplayLab, Path]) -> None:
    lab, state_root = replay
    # the core routers' many lines came as one `ip -batch` file (batch_above=4 here)
    assert any(line.startswith("ip -batch ") for _, line in lab.exec_log)
    url = f"http://{lab.addr('svc')}:{SERVICE_PORT}/"
    deadline = time.monotonic() + 10
    while True:
        got = lab.exec("web", "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-m", "2",
                       url)
        if got.stdout == "200" or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert got.stdout == "200", got
    assert "GET / " in (state_root / "svc" / "main.log").read_text()
    shaped = lab.exec("svc", "tc", "class", "show", "dev", "eth1").stdout
    assert "rate 10Mbit" in shaped, shaped


def test_an_exported_file_comes_up_natively(tmp_path: Path, state_root: Path) -> None:
    """`testbed up lab.clab.yml`: the import builds the same site with the netns backend."""
    name = unique_lab_name("ci")
    source = tmp_path / f"{name}.yaml"
    source.write_text(f"name: {name}\nnodes:{CORP_SITE}")
    exported = tmp_path / "site.clab.yml"
    done = run_cli("export", str(source), "-o", str(exported))
    assert done.returncode == 0, done.stderr
    up = run_cli("up", "--quiet", str(exported), state_dir=state_root)
    try:
        assert up.returncode == 0, up.stderr
        plan = build_plan(load_topology(source))
        proxy = plan.nodes["corp-proxy"].primary_address() or ""
        web = plan.nodes["web"].primary_address() or ""
        ping = run_cli("exec", "--lab", name, "pc1", "--", "ping", "-c", "1", "-W", "2", proxy,
                       state_dir=state_root)
        assert ping.returncode == 0, ping.stderr
        blocked = run_cli("exec", "--lab", name, "pc2", "--", "ping", "-c", "1", "-W", "1", web,
                          state_dir=state_root)
        assert blocked.returncode != 0, "the proxy-only firewall let a PC's ping out"
    finally:
        down = run_cli("down", name, state_dir=state_root)
        assert down.returncode == 0, down.stderr


def test_the_reference_overlay_runs_and_reports_over_management(
        replay: tuple[ReplayLab, Path]) -> None:
    """The exported `python3 -m testbed peer` lines run the login server, a supernode and
    a client behind the proxy-only firewall; the client logs in and attaches (through
    the proxy), and its control API and metrics answer on its management address."""
    lab, _ = replay

    def get(node: str, path: str) -> str:
        url = f"http://{lab.mgmt_addr(node)}:9100{path}"
        return subprocess.run(["ip", "netns", "exec", lab.mgmt_namespace, "curl", "-s",
                               "-m", "3", url], capture_output=True, text=True).stdout

    deadline = time.monotonic() + 60
    status: dict[str, object] = {}
    while time.monotonic() < deadline:
        text = get("pc1", "/status")
        status = json.loads(text) if text else {}
        if status.get("logged_in"):
            break
        time.sleep(0.5)
    assert status.get("logged_in") and status.get("attached_to"), status
    assert "peer_logged_in 1.0" in get("pc1", "/metrics")


def test_a_containerlab_users_lab_comes_up_natively(tmp_path: Path, state_root: Path) -> None:
    """`testbed up lab.clab.yml` for a lab a containerlab user wrote (not an export):
    linux nodes, veth links, addresses from exec lines (a group's too) and a stage exec,
    one address assigned by the planner; hosts on two subnets reach each other through
    the router, as containerlab would have wired them."""
    name = unique_lab_name("cu")
    path = tmp_path / "users.clab.yml"
    path.write_text(f"""\
name: {name}
topology:
  defaults: {{kind: linux, image: alpine}}
  groups:
    routers: {{exec: [sysctl -w net.ipv4.ip_forward=1]}}
  nodes:
    r1:
      group: routers
      exec: [ip addr add 10.0.1.1/24 dev eth1, ip addr add 10.0.2.1/24 dev eth2]
    h1:
      exec: [ip addr add 10.0.1.10/24 dev eth1, ip route add default via 10.0.1.1]
    h2:
      stages:
        configure:
          exec:
            - {{command: ip addr add 10.0.2.20/24 dev eth1, phase: on-exit}}
            - {{command: ip route add default via 10.0.2.1, phase: on-exit}}
    h3: {{}}
  links:
    - endpoints: ["r1:eth1", "h1:eth1"]
    - endpoints: ["r1:eth2", "h2:eth1"]
    - endpoints: ["r1:eth3", "h3:eth1"]
""")
    up = run_cli("up", "--quiet", str(path), state_dir=state_root)
    try:
        assert up.returncode == 0, up.stderr
        for source, target in (("h1", "10.0.2.20"), ("h2", "10.0.1.10")):
            ping = run_cli("exec", "--lab", name, source, "--", "ping", "-c", "1", "-W", "2",
                           target, state_dir=state_root)
            assert ping.returncode == 0, f"{source} -> {target}: {ping.stdout}{ping.stderr}"
        shown = run_cli("exec", "--lab", name, "h3", "--", "ip", "-4", "-o", "addr", "show",
                        "eth0", state_dir=state_root)
        assert shown.returncode == 0 and " inet " in shown.stdout, shown.stdout  # planned
    finally:
        down = run_cli("down", name, state_dir=state_root)
        assert down.returncode == 0, down.stderr
