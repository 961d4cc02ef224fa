"""Mininet topologies in: mn's built-ins and --custom files become topologies the loader
accepts, with Mininet's addresses and TCLink shaping; what the testbed cannot build fails
before anything is built, naming it and what to do instead."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from testbed.errors import InputError
from testbed.mininet.topo import convert, from_mininet, lab_name, load
from testbed.plan.build import build_plan
from tests.conftest import run_cli

pytest.importorskip("mininet")


def custom(tmp_path: Path, body: str, extra: str = "") -> str:
    path = tmp_path / "mytopo.py"
    path.write_text("from mininet.topo import Topo\nfrom mininet.link import TCLink, OVSLink\n"
                    "from mininet.node import OVSSwitch, CPULimitedHost\n"
                    "from mininet.nodelib import LinuxBridge\n\n"
                    "class Mine(Topo):\n    def build(self, n=2):\n"
                    + textwrap.indent(textwrap.dedent(body), " " * 8)
                    + "\ntopos = {'mine': Mine}\n" + extra)
    return str(path)


@pytest.mark.parametrize("spec, hosts, switches", [
    ("minimal", 2, 1), ("linear,4", 4, 4), ("linear,2,3", 6, 2), ("single,3", 3, 1),
    ("reversed,3", 3, 1), ("tree,depth=2,fanout=3", 9, 4)])
def test_mn_builtin_topologies_load_with_mininet_addresses(spec: str, hosts: int,
                                                           switches: int) -> None:
    topology = load(spec)
    plan = build_plan(topology)
    kinds = [n.kind for n in topology.nodes.values()]
    assert (kinds.count("host"), kinds.count("switch")) == (hosts, switches)
    addresses = sorted(plan.nodes[n].primary_address() or "" for n in topology.nodes
                       if topology.nodes[n].kind == "host")
    assert addresses == sorted(f"10.0.0.{i}" for i in range(1, hosts + 1))
    assert topology.name == lab_name(spec)


def test_tclink_options_become_link_shaping(tmp_path: Path) -> None:
    path = custom(tmp_path, """
        s1, s2 = self.addSwitch('s1'), self.addSwitch('s2', cls=LinuxBridge)
        h1, h2 = self.addHost('h1'), self.addHost('h2', ip='10.0.0.42')
        self.addLink(h1, s1, cls=TCLink, bw=5, max_queue_size=50, loss=1)
        self.addLink(s1, s2, cls=TCLink, bw=2.5)
        self.addLink(h2, s2)
    """)
    topology = load("mine", [path], name="shaped")
    links = {frozenset((link.a, link.b)): link for link in topology.links}
    h1 = links[frozenset(("h1", "s1"))]
    assert (h1.rate_ab, h1.rate_ba, h1.queue, h1.loss) == (5_000_000, 5_000_000, 50, 0.01)
    assert links[frozenset(("s1", "s2"))].rate_ab == 2_500_000
    plan = build_plan(topology)
    assert plan.nodes["h2"].primary_address() == "10.0.0.42"
    assert topology.name == "shaped"


@pytest.mark.parametrize("body, extra, named", [
    ("s = self.addSwitch('s1', cls=OVSSwitch)\nself.addLink(self.addHost('h1'), s)", "",
     "cls=OVSSwitch is an OpenFlow switch"),
    ("s = self.addSwitch('s1', protocols='OpenFlow13')\nself.addLink(self.addHost('h1'), s)",
     "", "option protocols='OpenFlow13' is not supported: OpenFlow settings"),
    ("s = self.addSwitch('s1')\nself.addLink(self.addHost('h1'), s, cls=OVSLink)", "",
     "unknown link class OVSLink"),
    ("s = self.addSwitch('s1')\nself.addLink(self.addHost('h1'), s, cls=TCLink, speedup=2)",
     "", "link option speedup=2 is not supported"),
    ("s = self.addSwitch('s1')\nself.addLink(self.addHost('h1', cls=CPULimitedHost), s)", "",
     "host class CPULimitedHost is not supported"),
    ("self.addLink(self.addHost('h1'), self.addHost('h2'))", "",
     "a link between two hosts"),
    ("a, b, c = (self.addSwitch(f's{i}') for i in (1, 2, 3))\n"
     "self.addLink(a, b)\nself.addLink(b, c)\nself.addLink(c, a)", "",
     "close loops of switches"),
    ("s = self.addSwitch('s1')\nself.addLink(self.addHost('h1'), s)",
     "controllers = {'c0': object}\n", "defines controllers (c0)"),
])
def test_unsupported_mininet_features_fail_naming_them(tmp_path: Path, body: str, extra: str,
                                                       named: str) -> None:
    path = custom(tmp_path, body, extra)
    with pytest.raises(InputError) as caught:
        convert("mine", [path])
    assert named in str(caught.value)
    assert "Mininet topology has" in str(caught.value)


def test_a_bad_lab_name_is_named_before_loading() -> None:
    with pytest.raises(InputError, match="lab name 'Tree_2': 1-12 chars"):
        convert("tree,depth=2", name="Tree_2")


def test_unknown_topo_names_the_known_ones() -> None:
    with pytest.raises(InputError, match="no such topology; known: .*linear.*tree"):
        convert("fattree,4")


def test_from_mininet_takes_a_topo_object() -> None:
    from mininet.topolib import TreeTopo

    topology = from_mininet(TreeTopo(depth=2, fanout=2))
    assert topology.name == "tree"
    assert len(topology.nodes) == 7


def test_convert_writes_yaml_that_validates(tmp_path: Path) -> None:
    out = tmp_path / "lab.yaml"
    made = run_cli("convert", "--topo", "tree,depth=2,fanout=2", "-o", str(out))
    assert made.returncode == 0, made.stderr
    checked = run_cli("validate", str(out))
    assert checked.returncode == 0, checked.stderr
    assert "7 nodes (4 host, 3 switch)" in checked.stdout


def test_validate_names_the_mininet_topology_it_checked() -> None:
    checked = run_cli("validate", "--topo", "tree,depth=2")
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.startswith("--topo tree,depth=2: valid. lab 'tree-2': 7 nodes")


def test_torus_is_refused_saying_why_and_what_to_do() -> None:
    with pytest.raises(InputError) as caught:
        convert("torus,3,3")
    assert "close loops of switches; Linux bridges here run no spanning tree" in str(
        caught.value)
    assert "build a routed topology instead" in str(caught.value)


def test_up_refuses_a_bad_topology_before_building(tmp_path: Path) -> None:
    path = custom(tmp_path, "s = self.addSwitch('s1', cls=OVSSwitch)\n"
                            "self.addLink(self.addHost('h1'), s)")
    result = run_cli("up", "--custom", path, "--topo", "mine", state_dir=tmp_path / "state")
    assert result.returncode == 2
    assert "cls=OVSSwitch is an OpenFlow switch" in result.stderr
    assert not (tmp_path / "state").exists()


def test_lab_up_takes_a_mininet_topo_object(tmp_path: Path) -> None:
    from mininet.topolib import TreeTopo

    from testbed import Lab
    from testbed.backends.fake import FakeBackend
    from testbed.errors import LabError

    with Lab.up(TreeTopo(depth=2, fanout=2), name="mntopo", backend=FakeBackend(),
                state_dir=tmp_path) as lab:
        assert lab.name == "mntopo"
        assert [h.name for h in lab.hosts] == ["h1", "h2", "h3", "h4"]
        assert lab["h4"].ip == "10.0.0.4"
    with pytest.raises(LabError, match=r"give a Mininet Topo its options when making it"):
        Lab.up(TreeTopo(), homes=4, backend=FakeBackend(), state_dir=tmp_path)


def test_a_converted_topology_takes_a_nat_and_a_pc_behind_it(tmp_path: Path) -> None:
    # what convert is for: the Mininet topology as YAML, then the testbed's own nodes
    import yaml

    from testbed.topology.loader import load_topology

    data = yaml.safe_load(convert("tree,depth=2,fanout=2"))
    data["nodes"]["home-nat"] = {"kind": "nat", "uplink": {"to": "s3"}}
    data["nodes"]["home-pc"] = {"kind": "host", "uplink": {"to": "home-nat",
                                                           "bandwidth": "8Mbit"}}
    path = tmp_path / "extended.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    plan = build_plan(load_topology(path))
    assert plan.nodes["home-pc"].realm == "nat:home-nat"
    nat = plan.nodes["home-nat"]
    assert nat.realm == "public" and (nat.primary_address() or "").startswith("10.")
    assert plan.nodes["h1"].primary_address() == "10.0.0.1"
