"""Mininet's `net` over a lab, without a kernel (the fake backend): which hosts `pingall`
picks on a big lab, how `net`/`links` see the lab's links, and `link a b down` reaching
the lab's link control (journaled). No node shell is started by any of this."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from testbed import Lab
from testbed.backends.fake import FakeBackend
from testbed.errors import LabError

pytest.importorskip("mininet")

from testbed.mininet.net import LabNet  # noqa: E402 - needs mininet
from testbed.mininet.topo import from_mininet  # noqa: E402

TOPOLOGY = """\
name: mnnet
nodes:
  core: {kind: router}
  server: {kind: host, uplink: {to: core}}
  nat{n}: {kind: nat, count: 20, uplink: {to: core}}
  pc{n}: {kind: host, count: 20, group: home-pc, uplink: {to: "nat{n}"}}
groups:
  home-pc: {kind: host}
"""


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    path = tmp_path / "mnnet.yaml"
    path.write_text(TOPOLOGY)
    with Lab.up(path, backend=FakeBackend(), state_dir=tmp_path / "s") as built:
        yield built


def names(nodes: list) -> list[str]:  # type: ignore[type-arg]
    return [n.name for n in nodes]


def test_pingall_picks_a_sample_on_a_big_lab_and_what_it_is_told(lab: Lab) -> None:
    net = LabNet(lab)
    hosts, timeout, note = net.select([])
    assert len(hosts) == 8 and "a sample of 8 of 21 hosts" in note
    assert hosts[0].name == "server" and len(set(names(hosts))) == 8
    assert names(net.select(["group=home-pc", "sample=3"])[0]) == ["pc1", "pc7", "pc14"]
    assert len(net.select(["all"])[0]) == 21
    assert names(net.select(["kind=nat", "sample=2"])[0]) == ["nat1", "nat11"]
    assert net.select(["2", "pc3", "server"])[1] == "2"  # mn's `pingall TIMEOUT`
    assert names(net.select(["pc3", "server"])[0]) == ["pc3", "server"]
    with pytest.raises(LabError, match="'bogus' is not a node"):
        net.select(["bogus"])
    assert all(not node.shell for node in net.values())


def test_links_and_link_down_go_through_the_lab(lab: Lab) -> None:
    net = LabNet(lab)
    assert "pc1" in net and len(net.hosts) == 42 and net.switches == []
    shown = {str(link) for link in net.links}
    assert "eth0<->eth1" in shown  # pc1's uplink to its NAT's inside
    assert net["pc1"].connectionsTo(net["nat1"])
    net.configLinkStatus("pc1", "nat1", "down")
    backend = lab.backend
    assert isinstance(backend, FakeBackend)
    assert backend.calls[-2:] == ["set_link_end eth0 down", "set_link_end eth1 down"]
    journal = (lab.state.dir / "journal.jsonl").read_text()
    assert '"a": "pc1", "b": "nat1", "op": "link_state", "up": false' in journal


def test_switches_are_nodes_with_ports_and_switch_links_can_go_down(tmp_path: Path) -> None:
    lab = Lab.up(from_mininet("tree,depth=2,fanout=2"), name="mntree", backend=FakeBackend(),
                 state_dir=tmp_path / "s")
    net = LabNet(lab)
    assert names(net.switches) == ["s1", "s2", "s3"]
    assert net["s2"].intfNames() == ["p1", "p2", "s5b"]  # h1, h2 and the link up to s1
    assert [str(link) for link in net.links] == [
        "eth0<->p1", "eth0<->p2", "eth0<->p3", "eth0<->p4", "s5a<->s5b", "s6a<->s6b"]
    (mine, theirs), = net["s1"].connectionsTo(net["s2"])
    assert (mine.name, theirs.name) == ("s5a", "s5b")
    net.configLinkStatus("s1", "s2", "down")
    backend = lab.backend
    assert isinstance(backend, FakeBackend)
    assert backend.calls[-2:] == ["set_link_end s5a down", "set_link_end s5b down"]
    lab.down()


def test_the_cli_completes_node_names(lab: Lab) -> None:
    from testbed.mininet.net import LabCLI

    cli = LabCLI.__new__(LabCLI)  # its __init__ starts the prompt at once
    cli.mn = LabNet(lab)
    assert cli.completenames("pi") == ["pingall", "pingallfull", "pingpair", "pingpairfull"]
    assert cli.completenames("pc1") == ["pc1", "pc10", "pc11", "pc12", "pc13", "pc14",
                                        "pc15", "pc16", "pc17", "pc18", "pc19"]
    assert cli.completedefault("ser", "pc1 ping ser", 9, 12) == ["server"]


def pings(lab: Lab) -> list[tuple[str, str]]:
    """(namespace, address) of every ping the lab's nodes were asked to send."""
    backend = lab.backend
    assert isinstance(backend, FakeBackend)
    return [(ns, argv[-1]) for ns, argv in backend.commands if argv[0] == "ping"]


def test_pingall_does_not_count_a_private_address_behind_another_nat(
        lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    # pc1 and pc2 are both 192.168.1.2 behind their own NATs: a ping from pc1 to "pc2"
    # would be answered by pc1 itself. pingall shows X and sends nothing for such pairs.
    printed: list[str] = []
    monkeypatch.setattr("testbed.mininet.net.output", printed.append)
    net = LabNet(lab)
    loss = net.pingAll("pc1 pc2 server")
    text = "".join(printed)
    assert "pc1 -> X server \n" in text
    assert "pc2 -> X server \n" in text
    assert "server -> X X \n" in text
    assert "*** 4 X without a ping: the address is private to another NAT's realm" in text
    assert "pc2's address 192.168.1.2 is private to the realm behind nat2" in text
    assert "*** Results: 67% dropped (2/6 received)" in text
    assert round(loss) == 67
    server = lab.addr("server")
    assert sorted(pings(lab)) == [("tb-mnnet-pc1", server), ("tb-mnnet-pc2", server)]


def test_lab_ping_counts_hosts_behind_other_nats_as_unreachable(lab: Lab) -> None:
    assert lab.ping(["pc1", "pc2"]) == 100.0
    assert pings(lab) == []
    # a NAT reaches its own inside and the public side, its inside reaches out; only
    # the public server cannot name pc1
    assert round(lab.ping(["nat1", "pc1", "server"]), 1) == 16.7
    assert sorted(pings(lab)) == sorted([
        ("tb-mnnet-nat1", "192.168.1.2"), ("tb-mnnet-nat1", lab.addr("server")),
        ("tb-mnnet-pc1", lab.addr("nat1")), ("tb-mnnet-pc1", lab.addr("server")),
        ("tb-mnnet-server", lab.addr("nat1"))])


def test_node_names_with_dashes_are_one_word_in_the_cli(tmp_path: Path) -> None:
    from testbed.mininet.net import LabCLI

    path = tmp_path / "dashed.yaml"
    path.write_text("name: dashed\nnodes:\n  core: {kind: router}\n"
                    "  home-nat: {kind: nat, uplink: {to: core}}\n"
                    "  home-pc: {kind: host, uplink: {to: home-nat}}\n")
    lab = Lab.up(path, backend=FakeBackend(), state_dir=tmp_path / "s")
    cli = LabCLI.__new__(LabCLI)
    cli.mn = LabNet(lab)
    assert cli.parseline("home-nat ip -br addr")[:2] == ("home-nat", "ip -br addr")
    import readline

    cli.preloop()  # Tab completes a whole name: readline does not split words at "-"
    assert "-" not in readline.get_completer_delims()
    lab.down()


def test_pingpair_takes_two_nodes_or_a_selection(lab: Lab,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    printed: list[str] = []
    monkeypatch.setattr("testbed.mininet.net.output", printed.append)
    monkeypatch.setattr("testbed.mininet.net.error", printed.append)
    net = LabNet(lab)
    assert names(net.pair(None)[0]) == ["server", "pc1"]  # Mininet's: the first two hosts
    assert names(net.pair("pc3 server")[0]) == ["pc3", "server"]
    assert names(net.pair("group=home-pc")[0]) == ["pc1", "pc3"]  # of pingall's sample
    assert names(net.pair("kind=nat sample=2")[0]) == ["nat1", "nat11"]
    net.pingPair("nat4 server")
    text = "".join(printed)
    assert "nat4 -> server \nserver -> nat4 \n" in text
    assert "*** Results: 0% dropped (2/2 received)" in text
    assert sorted(pings(lab)) == [("tb-mnnet-nat4", lab.addr("server")),
                                  ("tb-mnnet-server", lab.addr("nat4"))]
    printed.clear()
    assert net.pingPair("pc1 pc2 server") == 100.0
    assert net.pingPair("kind=router") == 100.0
    assert net.pingPair("bogus") == 100.0
    assert printed == ["*** pingpair: two nodes, not 3 (pingall takes more)\n",
                       "*** pingpair: kind=router selects 1 host(s); it needs two\n",
                       "*** pingpair: 'bogus' is not a node, a timeout or one of all, "
                       "group=NAME, kind=KIND, sample=N\n"]


def test_iperf_to_an_address_private_behind_another_nat_is_refused_at_once(lab: Lab) -> None:
    # the fake backend runs no process: refused before any iperf3 would start
    with pytest.raises(LabError, match="iperf3 from pc1 to pc2: pc2's address 192.168.1.2 "
                                       "is private to the realm behind nat2"):
        lab.iperf("pc1", "pc2")
    backend = lab.backend
    assert isinstance(backend, FakeBackend)
    assert not [argv for _, argv in backend.commands if argv[0] == "iperf3"]


def test_dump_shows_the_lab_s_kinds_and_addresses(lab: Lab) -> None:
    net = LabNet(lab)
    assert repr(net["pc1"]) == "<host pc1: eth0:192.168.1.2 pid=None> "
    assert repr(net["nat1"]).startswith("<nat nat1: eth0:198.18.0.")
    assert repr(net["core"]).startswith("<router core: ")
