"""`testbed export --format containerlab` and the import of containerlab files: schema
validity (containerlab's own JSON Schema), the round trip to the same plan, and clear
errors for what either direction cannot express. Pure: no root, no lab."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import textwrap
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from testbed.errors import ExportError, TopologyError
from testbed.export.containerlab import ExportOptions, export_containerlab
from testbed.export.node_setup import write_file
from testbed.plan.build import build_plan
from testbed.plan.model import NetworkPlan
from testbed.topology.loader import load_topology, load_topology_text
from testbed.topology.model import Topology
from tests.conftest import REPO, run_cli
from tests.integration import (
    site_checks,
    test_bounded_logs,
    test_capture_lab,
    test_clab_replay,
    test_held_back,
    test_interrupted_runs,
    test_inventory_lab,
    test_lab_smoke,
    test_lifecycle,
    test_login_saturation,
    test_mininet_cli,
    test_nat_types,
    test_overlay_fuzz,
    test_overlay_lab,
    test_ovs_switch,
    test_pytest_plugin_lab,
    test_sweep_lab,
)
from tests.integration.clab_replay import clab_split

SCHEMA_NAME = Path("shared", "schemas", "containerlab.clab.schema.json")
DEFAULT = REPO / "topologies" / "skype-2007.yaml"
LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

# every topology the integration tests build, by where it is written
TEST_TOPOLOGIES = {
    "capture_lab": test_capture_lab.TOPOLOGY,
    "inventory_lab": test_inventory_lab.TOPOLOGY,
    "lab_smoke": test_lab_smoke.TOPOLOGY,
    "lifecycle.SMALL": test_lifecycle.SMALL,
    "lifecycle.PAIR": test_lifecycle.PAIR,
    "lifecycle.INSPECTED": test_lifecycle.INSPECTED,
    "login_saturation": test_login_saturation.TOPOLOGY.format(policy="2007", scale=0.1,
                                                              rate=0.5),
    "nat_types": test_nat_types.TOPOLOGY,
    "overlay_fuzz": test_overlay_fuzz.TOPOLOGY,
    "overlay_lab.MIXED": test_overlay_lab.MIXED,
    "overlay_lab.CALLS": test_overlay_lab.CALLS,
    "proxy": "nodes:" + site_checks.CORP_SITE,
    "clab_replay": test_clab_replay.TOPOLOGY,
    "bounded_logs": test_bounded_logs.TOPOLOGY,
    "interrupted_runs": test_interrupted_runs.TOPOLOGY.format(name="exp"),
    "mininet_cli.NAT_LAB": test_mininet_cli.NAT_LAB,
    "pytest_plugin_lab": test_pytest_plugin_lab.TOPOLOGY,
    "sweep_lab": test_sweep_lab.TOPOLOGY.format(name="exp"),
    # the shipped topologies the SIP and CDN tests run (the default one has its own test)
    "sip-2007": (REPO / "topologies" / "sip-2007.yaml").read_text(),
    "p2p-cdn": (REPO / "topologies" / "p2p-cdn.yaml").read_text(),
}


def schema_path() -> Path:
    """containerlab's schema: $TESTBED_CLAB_SCHEMA, else ../shared/schemas/ beside the
    checkout or beside any directory above it (a worktree in /work/wt/<name> finds
    /work/shared as /work/main does). Absent, the test fails saying where it looked."""
    if os.environ.get("TESTBED_CLAB_SCHEMA"):
        return Path(os.environ["TESTBED_CLAB_SCHEMA"])
    candidates = [parent / SCHEMA_NAME for parent in REPO.parents]
    found = next((c for c in candidates if c.is_file()), None)
    if found is None:
        pytest.fail(f"containerlab's JSON Schema not found (looked for {SCHEMA_NAME} above "
                    f"{REPO}); set TESTBED_CLAB_SCHEMA to its path")
    return found


def validator() -> jsonschema.Draft7Validator:
    """containerlab's schema; its `\\p{N}\\p{L}` (letters/digits in interface zones) is
    spelled the way Python's re understands."""
    text = schema_path().read_text().replace(r"[\\p{N}\\p{L}]", r"[^\\W_]")
    return jsonschema.Draft7Validator(json.loads(text))


def topology_of(text: str, name: str = "exp") -> Topology:
    body = textwrap.dedent(text)
    if not re.search(r"(?m)^name:", body):
        body = f"name: {name}\n{body}"
    return load_topology_text(body, f"{name}.yaml")


def exported(topology: Topology, **options: Any) -> dict[str, Any]:
    export = export_containerlab(topology, build_plan(topology), ExportOptions(**options))
    document: dict[str, Any] = yaml.load(export.dump(), Loader=LOADER)
    return document


def commands(node: dict[str, Any]) -> list[str]:
    """An exported node's commands: its configure stage's on-exit execs, run in the
    node (the form the export writes), `$$` as containerlab hands it over, `$`."""
    execs = node["stages"]["configure"]["exec"]
    assert all(e["phase"] == "on-exit" and e.get("target", "container") == "container"
               for e in execs), execs
    return [e["command"].replace("$$", "$") for e in execs]


def assert_valid(document: dict[str, Any]) -> None:
    errors = [f"{'/'.join(map(str, e.path))}: {e.message[:200]}"
              for e in validator().iter_errors(document)]
    assert not errors, errors[:5]


def digest(plan: NetworkPlan) -> dict[str, Any]:
    """Everything a lab is built from, without source lines and key paths."""
    return {
        "lab": plan.lab, "bridges": plan.bridges, "mgmt": plan.mgmt_bridge_address,
        "overlay": plan.overlay,
        "nodes": {name: {
            "kind": n.kind, "namespace": n.namespace, "realm": n.realm,
            "inner": n.inner_realm, "uplink": n.uplink_interface, "mgmt": n.mgmt_address,
            "routes": n.routes, "labels": n.node.labels, "group": n.node.group,
            "index": n.node.index, "command": n.node.command, "env": n.node.env,
            "nat": n.node.nat, "firewall": n.node.firewall, "proxy": n.node.proxy,
            "supernode": n.node.supernode, "lan_pool": n.node.lan_pool,
            "interfaces": [(i.name, i.segment, i.address, i.peer, i.shaping)
                           for i in n.interfaces]}
            for name, n in plan.nodes.items()},
        "segments": [(s.realm, s.members, s.gateway, s.subnet, s.bridge)
                     for s in plan.segments],
        "veths": plan.veths,
    }


def round_trip(topology: Topology, tmp_path: Path) -> Topology:
    path = tmp_path / f"{topology.name}.clab.yml"
    path.write_text(export_containerlab(topology, build_plan(topology)).dump())
    return load_topology(path)


def test_the_default_topology_exports_valid_and_round_trips(tmp_path: Path) -> None:
    topology = load_topology(DEFAULT)
    document = exported(topology)
    assert_valid(document)
    nodes = document["topology"]["nodes"]
    assert len(nodes) == len(topology.nodes) == 343
    assert {n["kind"] for n in nodes.values()} == {"linux"}
    assert document["topology"]["defaults"]["image"] == "localhost/outage-testbed-node:latest"
    assert nodes["home001"]["labels"] == {"os": "windows", "site": "home",
                                          "testbed-kind": "peer"}
    assert nodes["home001"]["group"] == "home-pc"
    assert nodes["sn01"]["labels"]["sn_capable"] == "true"
    # hosts behind a NAT configure after it; the LAN's switch after the site firewall
    assert nodes["home001"]["stages"]["configure"]["wait-for"] == [
        {"node": "home001-nat", "stage": "configure"}]
    assert nodes["corp01"]["stages"]["configure"]["wait-for"][0]["node"] == "corp-lan"
    assert nodes["corp-lan"]["stages"]["configure"]["wait-for"][0]["node"] == "corp-fw"
    # ... and that waits for their commands: containerlab runs a stage's on-exit execs
    # before it releases the nodes waiting for the stage, while a plain `exec:` list runs
    # after, racing them; so every command is an on-exit exec, none a plain exec line
    assert not any("exec" in n for n in nodes.values())
    assert "nft " in "\n".join(commands(nodes["home001-nat"]))
    # the same addresses as the native lab, on containerlab's names (eth0 is mgmt)
    plan = build_plan(topology)
    wan = plan.nodes["home001-nat"].interfaces[0]
    assert f"ip addr add {wan.address} dev eth1" in commands(nodes["home001-nat"])
    assert nodes["home001"]["mgmt-ipv4"] == plan.nodes["home001"].mgmt_address.split("/")[0]
    assert digest(build_plan(round_trip(topology, tmp_path))) == digest(plan)


# the node keys containerlab v0.60.0 (the first with stage execs as a list) reads, from
# its types/node_definition.go: containerlab parses topologies strictly (UnmarshalStrict),
# so a key an older release does not know fails the whole deploy
CONTAINERLAB_V060_NODE_KEYS = {
    "kind", "group", "type", "startup-config", "startup-delay", "enforce-startup-config",
    "suppress-startup-config", "auto-remove", "restart-policy", "config", "image",
    "image-pull-policy", "license", "position", "entrypoint", "cmd", "exec", "binds",
    "ports", "mgmt-ipv4", "mgmt-ipv6", "publish", "env", "env-files", "user", "labels",
    "network-mode", "sandbox", "kernel", "runtime", "cpu", "cpu-set", "memory", "sysctls",
    "extras", "stages", "dns", "certificate", "healthcheck", "aliases"}


def test_the_export_uses_only_keys_containerlab_v060_knows() -> None:
    document = exported(load_topology(DEFAULT, {"homes": "3"}))
    assert set(document) <= {"name", "prefix", "mgmt", "topology", "settings"}
    assert set(document["topology"]["defaults"]) <= CONTAINERLAB_V060_NODE_KEYS
    for name, node in document["topology"]["nodes"].items():
        assert set(node) <= CONTAINERLAB_V060_NODE_KEYS, (name, set(node))
        for stage in node["stages"].values():
            assert set(stage) <= {"wait-for", "exec"}
            assert all(set(e) <= {"command", "target", "phase"} for e in stage["exec"])


# the node and topology keys clabernetes' own topology model reads
# (srl-labs/clabernetes util/containerlab/types.go); yaml.v3 drops any other key unread
CLABERNETES_NODE_KEYS = {
    "kind", "group", "type", "startup-config", "startup-delay", "enforce-startup-config",
    "auto-remove", "config", "image", "image-pull-policy", "license", "position",
    "entrypoint", "cmd", "SANs", "exec", "binds", "ports", "mgmt-ipv4", "mgmt-ipv6",
    "publish", "env", "env-files", "user", "labels", "network-mode", "sandbox", "kernel",
    "runtime", "cpu", "cpu-set", "memory", "sysctls", "extras", "wait-for", "dns",
    "certificate", "healthcheck", "aliases", "components"}


def test_the_clabernetes_format_keeps_every_command_where_clabverter_reads_it(
        tmp_path: Path) -> None:
    """clabernetes' topology model has no `stages`, so the stage execs of the default
    format would vanish in clabverter: `--format clabernetes` writes the same commands as
    plain exec lines and nothing clabernetes does not read."""
    topology = load_topology(DEFAULT, {"homes": "3"})
    staged = exported(topology)["topology"]["nodes"]
    document = exported(topology, flavour="clabernetes")
    assert_valid(document)
    nodes = document["topology"]["nodes"]
    for name, node in nodes.items():
        assert set(node) <= CLABERNETES_NODE_KEYS, (name, set(node) - CLABERNETES_NODE_KEYS)
        assert [c.replace("$$", "$") for c in node["exec"]] == commands(staged[name])
    assert set(document["topology"]["defaults"]) <= CLABERNETES_NODE_KEYS
    out = tmp_path / "c9s" / "lab.clab.yml"  # clabverter wants a directory of its own
    done = run_cli("export", str(DEFAULT), "--set", "homes=3", "--format", "clabernetes",
                   "-o", str(out))
    assert done.returncode == 0 and "clabverter --stdout" in done.stdout, done.stderr
    assert digest(build_plan(load_topology(out))) == digest(build_plan(topology))


@pytest.mark.parametrize("name", sorted(TEST_TOPOLOGIES))
def test_each_test_topology_exports_valid_and_round_trips(name: str, tmp_path: Path) -> None:
    topology = topology_of(TEST_TOPOLOGIES[name])
    assert_valid(exported(topology))
    again = round_trip(topology, tmp_path)
    assert digest(build_plan(again)) == digest(build_plan(topology))


def test_exec_lines_are_the_backends_own_rules() -> None:
    """NAT, proxy-only firewall, shaping and services come from the same code as the
    native lab, renamed to containerlab's interfaces."""
    topology = topology_of("nodes:" + site_checks.CORP_SITE + """
  svc: {kind: host, uplink: {to: internet, up: 1Mbit, down: 8Mbit, loss: 1%},
        command: "my-server --listen {addr} --dir {state_dir}", env: {MODE: fast}}
""")
    nodes = exported(topology, state_root="/srv/tb")["topology"]["nodes"]
    fw = "\n".join(commands(nodes["corp-fw"]))
    assert 'oifname "eth1" masquerade' in fw          # the NAT's uplink is eth1 here
    assert 'iifname != "eth1" oifname "eth1" drop' in fw  # proxy-only egress
    assert 'iifname "eth0" drop' in fw and "mgmt0" not in fw
    svc = commands(nodes["svc"])
    assert "tc class add dev eth1 parent 1: classid 1:1 htb rate 1000000bit ceil 1000000bit " \
           "burst 3028 cburst 3028 quantum 1514" in svc
    internet = "\n".join(commands(nodes["internet"]))
    assert "numgen random mod 1000000 < 10000 drop" in internet  # loss without netem
    address = build_plan(topology).nodes["svc"].primary_address()
    assert any(f"setsid -f my-server --listen {address} --dir /srv/tb/svc" in line
               for line in svc), svc
    assert nodes["svc"]["env"] == {"MODE": "fast"}
    assert any("setsid -f tinyproxy -d -c /srv/tb/corp-proxy/tinyproxy.conf" in line
               for line in commands(nodes["corp-proxy"]))


def test_delay_is_exported_as_netem_where_asked() -> None:
    topology = topology_of("""
nodes:
  r: {kind: router}
  h: {kind: host, uplink: {to: r, delay: 20ms, loss: 1%}}
""")
    lines = commands(exported(topology)["topology"]["nodes"]["h"])
    assert "tc qdisc add dev eth1 root handle 10: netem delay 20.000ms loss 1.0000%" in lines


def test_what_containerlab_cannot_express_fails_naming_node_and_field() -> None:
    held = topology_of(test_held_back.TOPOLOGY)
    with pytest.raises(ExportError) as err:
        exported(held)
    assert "held_back" in str(err.value) and "add_nodes" in str(err.value)
    ovs = topology_of(test_ovs_switch.TOPOLOGY)
    with pytest.raises(ExportError) as err:
        exported(ovs)
    assert ".switch.type: an Open vSwitch switch cannot be exported" in str(err.value)
    mega = load_topology(DEFAULT, {"mega_supernodes": "1"})
    with pytest.raises(ExportError, match=r"nodes\.mega01\.held_back"):
        exported(mega)


FOREIGN = """\
name: foreign
topology:
  nodes:
    r1:
      kind: linux
      image: alpine
      exec:
        - sysctl -w net.ipv4.ip_forward=1
        - ip addr add 10.0.1.1/24 dev eth1
        - ip addr add 10.0.2.1/24 dev eth2
    h1:
      kind: linux
      image: alpine
      labels: {role: client}
      exec:
        - ip addr add 10.0.1.10/24 dev eth1
        - ip link set eth1 up
        - ip route add default via 10.0.1.1
    h2:
      kind: linux
      exec: ["ip route add default via 10.0.2.1"]
  links:
    - endpoints: ["r1:eth1", "h1:eth1"]
    - type: veth
      endpoints: [{node: h2, interface: eth1}, {node: r1, interface: eth2}]
      ipv4: [10.0.2.20/24, 10.0.2.1/24]
"""


def test_a_containerlab_lab_of_linux_nodes_imports(tmp_path: Path) -> None:
    path = tmp_path / "foreign.clab.yml"
    path.write_text(FOREIGN)
    topology = load_topology(path)
    assert {n.name: n.kind for n in topology.nodes.values()} == {
        "r1": "router", "h1": "host", "h2": "host"}
    assert topology.nodes["h1"].uplink == "r1" and topology.nodes["h1"].labels == {
        "role": "client"}
    plan = build_plan(topology)
    assert plan.nodes["h1"].addresses() == ["10.0.1.10"]
    assert plan.nodes["h2"].addresses() == ["10.0.2.20"]  # from the link's ipv4
    assert [(r.destination, r.via) for r in plan.nodes["h2"].routes] == [
        ("default", "10.0.2.1")]
    validated = run_cli("validate", str(path))
    assert validated.returncode == 0 and "3 nodes" in validated.stdout, validated.stderr


def test_what_cannot_be_imported_says_what_is_supported(tmp_path: Path) -> None:
    path = tmp_path / "other.clab.yml"
    path.write_text(textwrap.dedent("""\
        name: other
        topology:
          nodes:
            srl: {kind: nokia_srlinux}
            h: {kind: linux, exec: ["ip route add 10.9.0.0/16 via 10.0.0.1"]}
          links:
            - type: host
              endpoints: ["h:eth1", "host:veth9"]
        """))
    with pytest.raises(TopologyError) as err:
        load_topology(path)
    text = str(err.value)
    assert f"{path}:4: topology.nodes.srl.kind: node srl: kind 'nokia_srlinux'" in text
    assert "topology.nodes.h.exec[0]: node h: exec line 'ip route add 10.9.0.0/16" in text
    assert "link type 'host' cannot be imported" in text
    assert "supported: kind linux nodes; veth links" in text


STAGED = """\
name: staged
topology:
  groups:
    routers: {kind: linux, exec: [sysctl -w net.ipv4.ip_forward=1]}
  nodes:
    r1:
      group: routers
      exec: [ip addr add 10.0.1.1/24 dev eth1]
    h1:
      kind: linux
      stages:
        configure:
          wait-for: [{node: r1, stage: configure}]
          exec:
            - {command: ip addr add 10.0.1.10/24 dev eth1, phase: on-exit}
            - {command: ip route add default via 10.0.1.1, phase: on-exit}
  links:
    - endpoints: ["r1:eth1", "h1:eth1"]
"""


def test_exec_lines_are_read_where_containerlab_reads_them(tmp_path: Path) -> None:
    """A group's exec lines apply to its nodes, and stages' container execs count as
    exec lines (the form `testbed export` itself writes)."""
    path = tmp_path / "staged.clab.yml"
    path.write_text(STAGED)
    topology = load_topology(path)
    assert topology.nodes["r1"].kind == "router" and topology.nodes["h1"].uplink == "r1"
    plan = build_plan(topology)
    assert plan.nodes["h1"].addresses() == ["10.0.1.10"]
    assert [(r.destination, r.via) for r in plan.nodes["h1"].routes] == [
        ("default", "10.0.1.1")]


def test_node_settings_the_import_would_lose_fail_at_file_line(tmp_path: Path) -> None:
    path = tmp_path / "lossy.clab.yml"
    path.write_text(textwrap.dedent("""\
        name: lossy
        topology:
          defaults: {kind: linux, image: alpine, binds: [./frr:/etc/frr]}
          nodes:
            web:
              cmd: python3 -m http.server 80
              stages:
                create-links:
                  exec: [{command: ip link add x type dummy, phase: on-exit, target: host}]
            h: {}
          links:
            - endpoints: ["web:eth1", "h:eth1"]
        """))
    with pytest.raises(TopologyError) as err:
        load_topology(path)
    text = str(err.value)
    assert f"{path}:3: topology.defaults.binds: node web: 'binds' cannot be imported" in text
    assert "topology.defaults.binds: node h: 'binds' cannot be imported" in text
    assert f"{path}:6: topology.nodes.web.cmd: node web: 'cmd' cannot be imported" in text
    assert "topology.nodes.web.stages.create-links.exec[0]: node web: stage exec" in text
    assert "only commands run in the node" in text and "node keys accepted: auto-remove" in text


def test_a_mininet_topology_exports_too(tmp_path: Path) -> None:
    """docs/multi-machine.md: `testbed export --topo tree,depth=2 -o tree.clab.yml`."""
    out = tmp_path / "tree.clab.yml"
    done = run_cli("export", "--topo", "tree,depth=2", "--name", "tree", "-o", str(out))
    assert done.returncode == 0, done.stderr
    document = yaml.load(out.read_text(), Loader=LOADER)
    assert_valid(document)
    assert document["name"] == "tree" and len(document["topology"]["nodes"]) == 7
    checked = run_cli("validate", str(out))
    assert checked.returncode == 0 and "7 nodes (4 host, 3 switch)" in checked.stdout, \
        checked.stderr


def test_cli_export_writes_the_file_and_up_accepts_it(tmp_path: Path) -> None:
    out = tmp_path / "lab.clab.yml"
    done = run_cli("export", str(DEFAULT), "--set", "homes=3", "-o", str(out),
                   "--image", "registry.example/tb-node:1")
    assert done.returncode == 0, done.stderr
    assert f"wrote {out}" in done.stdout and "containerlab deploy -t" in done.stdout
    document = yaml.load(out.read_text(), Loader=LOADER)
    assert_valid(document)
    assert document["topology"]["defaults"]["image"] == "registry.example/tb-node:1"
    assert len(document["topology"]["nodes"]) == 3 * 2 + 10 + 1 + 1 + 3 + 8
    checked = run_cli("validate", str(out))
    assert checked.returncode == 0 and "lab 'skype2007'" in checked.stdout, checked.stderr
    with_set = run_cli("validate", str(out), "--set", "homes=4")
    assert with_set.returncode == 2 and "has no parameters" in with_set.stderr


@pytest.mark.parametrize(("topology", "params", "kinds"), [
    ("skype-2007", ["homes=2"], {"peer", "login"}),
    ("sip-2007", ["homes=2", "corp_hosts=1"], {"registrar"}),
    ("p2p-cdn", ["seeds=1", "homes=2"], {"origin", "bt_peer"})])
def test_prometheus_targets_are_the_exported_nodes_management_addresses(
        topology: str, params: list[str], kinds: set[str], tmp_path: Path) -> None:
    """--prometheus lists every node the native lab's Prometheus scrapes, whatever the
    workload, at the management address the exported node gets."""
    out, targets = tmp_path / "lab.clab.yml", tmp_path / "targets.json"
    done = run_cli("export", str(REPO / "topologies" / f"{topology}.yaml"),
                   *(a for p in params for a in ("--set", p)), "-o", str(out),
                   "--prometheus", str(targets))
    assert done.returncode == 0, done.stderr
    nodes = yaml.load(out.read_text(), Loader=LOADER)["topology"]["nodes"]
    listed = json.loads(targets.read_text())
    assert {t["labels"]["kind"] for t in listed} == kinds
    assert f"{len(listed)} scrape targets" in done.stderr
    for target in listed:
        node = target["labels"]["node"]
        [address] = target["targets"]
        assert address.rsplit(":", 1)[0] == nodes[node]["mgmt-ipv4"], target
        assert nodes[node]["labels"]["testbed-kind"] == target["labels"]["kind"]


# the Debian package that brings each program the exec lines run (sh, mkdir, printf and
# cd come with every Debian image)
PROVIDER = {"ip": "iproute2", "tc": "iproute2", "nft": "nftables", "sysctl": "procps",
            "setsid": "util-linux", "tinyproxy": "tinyproxy", "kamailio": "kamailio",
            "baresip": "baresip-core", "opentracker": "opentracker",
            "python3": "python3", "rtpengine": "rtpengine-daemon"}
# what a `python3 -m MODULE` line needs beyond the project itself (it runs the program
# or imports the binding), as playbooks/lab.yml installs it for the native lab
MODULE_NEEDS: dict[str, set[str]] = {
    "testbed": set(), "testbed.p2p.origin": {"lighttpd"},
    "testbed.p2p.origin_exporter": set(), "testbed.p2p.client": {"python3-libtorrent"},
    "testbed.sip.relay_wait": {"kamailio"}}  # execs Kamailio once the relay answers
BASE = {"sh", "mkdir", "printf", "cd", "true", "env"}  # in every Debian image
WRAPPERS = {"exec", "env", "setsid", "-f"}  # what stands before the program in a script
SEPARATORS = {"&&", "||", ";", "|"}


def commands_in(line: str) -> list[list[str]]:
    """The commands an exec line runs, each as its words: the line itself, and in
    `sh -c SCRIPT` each command of the script (redirections dropped)."""
    words = shlex.split(line)
    if words[:2] != ["sh", "-c"]:
        return [words]
    lexer = shlex.shlex(words[2], posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    out: list[list[str]] = [[]]
    skip = False
    for token in lexer:
        if skip:
            skip = False  # the file (or descriptor) a redirection names
        elif token in SEPARATORS:
            out.append([])
        elif token in (">", ">>", "<", ">&"):
            skip = True
        else:
            out[-1].append(token)
    return [words[:1], *(c for c in out if c)]


def programs_of(line: str) -> set[str]:
    """The programs an exec line runs (past exec/env/setsid wrappers, which count
    themselves), with `python3 -m MODULE` as `python3 -m MODULE`."""
    found = set()
    for command in commands_in(line):
        command = [w for w in command if "=" not in w or w.startswith("-")]
        while command and command[0] in WRAPPERS:
            found.add(command.pop(0))
        if command[:2] == ["python3", "-m"]:
            found.add(f"python3 -m {command[2]}")
        found.update(command[:1])
    return found - {"exec", "-f"}


def test_the_node_image_has_every_program_the_exec_lines_run() -> None:
    """Every program an exported node runs, for every node kind the shipped topologies
    use (the reference overlay, the proxy-only site, SIP, the P2P CDN), comes from a
    package the image installs, as the native lab's playbook installs it."""
    containerfile = (REPO / "images" / "node" / "Containerfile").read_text()
    installed = set(re.findall(r"[a-z0-9][a-z0-9.+-]+", containerfile.split(
        "apt-get install", 1)[1].split("&&", 1)[0]))
    playbook = yaml.safe_load((REPO / "playbooks" / "lab.yml").read_text())
    lab_packages = set(playbook[0]["vars"]["lab_packages"])
    topology = topology_of("nodes:" + site_checks.CORP_SITE + """
  home-nat: {kind: nat, nat: {type: full-cone}, uplink: {to: internet, loss: 1%}}
  home: {kind: peer, uplink: {to: home-nat, bandwidth: 10Mbit, queue: 20}}
overlay: {}
""")
    documents = [exported(topology),
                 exported(load_topology(REPO / "topologies" / "sip-2007.yaml",
                                        {"homes": "2", "corp_hosts": "1"})),
                 exported(load_topology(REPO / "topologies" / "p2p-cdn.yaml",
                                        {"seeds": "1", "homes": "2"}))]
    programs = {p for document in documents for node in document["topology"]["nodes"].values()
                for line in commands(node) for p in programs_of(line)}
    assert {"ip", "tc", "nft", "sysctl", "setsid", "tinyproxy", "python3", "rtpengine",
            "python3 -m testbed.sip.relay_wait", "baresip", "opentracker",
            "python3 -m testbed.p2p.client"} <= programs
    modules = {p.removeprefix("python3 -m ") for p in programs if p.startswith("python3 -m ")}
    assert modules <= set(MODULE_NEEDS), f"exec lines run modules the test does not know: " \
        f"{modules - set(MODULE_NEEDS)}"
    unknown = programs - BASE - set(PROVIDER) - {f"python3 -m {m}" for m in modules}
    assert not unknown, f"exec lines run programs the test does not know: {unknown}"
    needed = {PROVIDER[p] for p in programs - BASE if p in PROVIDER}
    needed |= {package for m in modules for package in MODULE_NEEDS[m]}
    assert needed - {"python3", "util-linux"} <= lab_packages  # the native lab's names
    missing = needed - installed
    assert not missing, f"the node image lacks {missing}"
    assert "pip install" in containerfile and "ENV PATH=/opt/testbed/venv/bin" in containerfile
    # the venv's python3 runs the peers, so it must see Debian's libtorrent binding
    assert "venv --system-site-packages /opt/testbed/venv" in containerfile


def test_the_docs_name_the_export_and_import_commands_and_every_option() -> None:
    readme = (REPO / "README.md").read_text()
    assert "testbed export topologies/skype-2007.yaml --format containerlab -o lab.clab.yml" \
        in readme
    assert "sudo testbed up lab.clab.yml" in readme and "docs/multi-machine.md" in readme
    guide = (REPO / "docs" / "multi-machine.md").read_text()
    helptext = run_cli("export", "--help")
    assert helptext.returncode == 0 and "docs/multi-machine.md" in helptext.stdout
    for option in re.findall(r"^\s+(--[a-z-]+)", helptext.stdout, flags=re.M):
        if option != "--help":
            assert option in guide, f"export {option} is not in docs/multi-machine.md"
    assert "podman build -f images/node/Containerfile" in guide
    assert "podman build -f images/node/Containerfile" in (
        REPO / "images" / "node" / "Containerfile").read_text()


def test_containerlab_splits_every_command_as_a_shell_would() -> None:
    """containerlab splits a command with google/shlex, which is not a POSIX shell (a
    word-leading `#` starts a comment, a backslash in double quotes escapes anything):
    every exported command must come out as the words a shell would see."""
    sources = [DEFAULT, REPO / "topologies" / "sip-2007.yaml",
               REPO / "topologies" / "p2p-cdn.yaml"]
    lines = {c for source in sources for node in exported(load_topology(
        source, {"homes": "2"}))["topology"]["nodes"].values() for c in commands(node)}
    assert len(lines) > 100
    differ = [line for line in lines if clab_split(line) != shlex.split(line)]
    assert not differ, differ[:3]
    # the splitter itself, where google/shlex and a shell part ways
    assert clab_split("echo a #b c") == ["echo", "a"] != shlex.split("echo a #b c")
    assert clab_split('printf "a\\qb"') == ["printf", "aqb"]
    assert clab_split("sh -c 'x && y'\"'\"'z'") == ["sh", "-c", "x && y'z"]
    with pytest.raises(ValueError, match="closing quote"):
        clab_split("nft 'table")


def test_large_nodes_stay_within_what_one_exec_line_may_carry(tmp_path: Path) -> None:
    """A router with many links gets one `ip -batch` file instead of an exec round trip
    per line, and a large file (a login server's user list grows with the lab) is written
    in pieces, each far below Linux's 128 KiB per argument, that add up to the file."""
    hosts = "".join(f"\n  h{i}: {{kind: host, uplink: {{to: core}}}}" for i in range(40))
    nodes = exported(topology_of("nodes:\n  core: {kind: router}" + hosts))["topology"]["nodes"]
    core = commands(nodes["core"])
    assert "ip -batch /var/lib/testbed/core/ip.batch" in core and len(core) < 10, core
    assert not any(line.startswith("ip -batch") for line in commands(nodes["h1"]))

    content = json.dumps({f"user{i:05}": "x" * 24 for i in range(4000)})  # ~150 kB
    lines = write_file(str(tmp_path / "login"), "peer.json", content)
    assert len(lines) > 1 and max(len(line.encode()) for line in lines) < 64 * 1024
    for line in lines:  # run as containerlab would: split, no shell of ours
        subprocess.run(shlex.split(line), check=True)
    assert (tmp_path / "login" / "peer.json").read_text() == content


def test_a_link_capture_is_left_out_with_a_note() -> None:
    topology = topology_of("""
nodes:
  core: {kind: router}
  a: {kind: host, uplink: {to: core, capture: {filter: udp}}}
""")
    export = export_containerlab(topology, build_plan(topology))
    assert export.notes == ["nodes.a.uplink: capture: is not exported (captures record under "
                            "`testbed run`; run tcpdump in the node instead)"]
