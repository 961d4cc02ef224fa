"""Mininet users' paths on real labs: Mininet's own CLI driven by a script over a lab with
NATs (pingall on a sample, iperf, link down then a failed ping, link up then a good one),
a --custom topology with TCLink options whose bandwidth iperf shows, and mn's built-in
topologies coming up and pinging."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import sys
import textwrap
import time
from pathlib import Path

import pytest

from testbed.lab.lab import Lab
from testbed.mininet import from_mininet
from tests.conftest import REPO, RunningLab, run_cli, unique_lab_name

pytestmark = [pytest.mark.root, pytest.mark.slow]
pytest.importorskip("mininet")

NAT_LAB = """
nodes:
  core: {kind: router}
  server: {kind: host, uplink: {to: core, bandwidth: 100Mbit}}
  nat1: {kind: nat, uplink: {to: core}}
  pc{n}: {kind: host, count: 12, uplink: {to: nat1, bandwidth: 20Mbit}}
  nat-b: {kind: nat, uplink: {to: core}}
  pcb: {kind: host, uplink: {to: nat-b}}
"""

SCRIPT = """
nodes
pingall
pingall pcb server
pingall pc1 pc2 pcb
pc1 ping -c1 -W1 pcb
nat-b ip -br addr show dev eth1
iperf pc1 server
link pc1 nat1 down
links
pc1 echo LINK-DOWN
pc1 ping -c1 -W1 server
link pc1 nat1 up
pc1 echo LINK-UP
pc1 ping -c1 -W2 server
"""


def cli(lab: RunningLab, script: str, tmp_path: Path) -> str:
    path = tmp_path / "commands.cli"
    path.write_text(textwrap.dedent(script))
    result = run_cli("cli", lab.name, "--script", str(path), state_dir=lab.state.root,
                     timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout + result.stderr  # Mininet logs its output to stderr, as `mn`


def ping_blocks(text: str) -> list[str]:
    return re.findall(r"(\d+) packets transmitted, (\d+) received", text)


def test_the_cli_script_on_a_lab_with_nats(make_lab, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    lab = make_lab(NAT_LAB)
    out = cli(lab, SCRIPT, tmp_path)
    assert "pc1 pc10 pc11 pc12 pc2" in out  # `nodes`
    # a bare pingall pings a sample; the public server cannot reach into the NATs
    assert "*** Ping: a sample of 8 of 14 hosts" in out
    server_row = re.search(r"^server -> (.*)$", out, re.M)
    assert server_row and set(server_row.group(1).split()) == {"X"}
    pc1_row = re.search(r"^pc1 -> (.*)$", out, re.M)
    assert pc1_row and "server" in pc1_row.group(1).split()
    assert "*** Results: 12% dropped (49/56 received)" in out
    # named nodes: from behind its NAT pcb reaches the server; the server cannot reach it
    assert re.search(r"^pcb -> server \n^server -> X \n", out, re.M), out
    # pc1 and pcb are both 192.168.1.2, behind different NATs: no ping between them counts
    # (pc1 would answer its own), and a ping typed by hand gets a note first
    assert re.search(r"^pc1 -> pc2 X \n^pc2 -> pc1 X \n^pcb -> X X \n"
                     r"^\*\*\* 4 X without a ping", out, re.M), out
    assert "*** note: pcb's address 192.168.1.2 is private to the realm behind nat-b" in out
    # a node name with a dash is one word: the command ran in nat-b (its inside address)
    assert re.search(r"^eth1\S* +UP +192\.168\.1\.1/24", out, re.M), out
    # iperf through pc1's 20 Mbit uplink
    rates = re.search(r"\*\*\* Results: \['([\d.]+) Mbits/sec', '([\d.]+) Mbits/sec'\]", out)
    assert rates, out
    assert 14 <= float(rates.group(1)) <= 21
    # the link down: the ping fails; up again: it succeeds
    # `links` shows the link that went down as DOWN at both ends, the others OK
    states = re.findall(r"^(\S+)<->(\S+) \((\w+) (\w+)\)", out, re.M)
    assert [s[2:] for s in states if s[2:] != ("OK", "OK")] == [("DOWN", "DOWN")], states
    assert len(states) == 16  # every uplink (14 hosts, 2 NATs), no management link
    failed, good = out.split("LINK-DOWN")[1].split("LINK-UP")
    assert "Network is unreachable" in failed or ping_blocks(failed) == [("1", "0")]
    assert ping_blocks(good) == [("1", "1")]
    journal = [json.loads(line) for line in
               (lab.state.dir / "journal.jsonl").read_text().splitlines()]
    changes = [(e["a"], e["b"], e["up"]) for e in journal if e["op"] == "link_state"]
    assert changes == [("pc1", "nat1", False), ("pc1", "nat1", True)]
    assert lab.state.exists()  # the CLI leaves the lab running


def test_a_custom_topology_with_tclink_options_comes_up_with_its_bandwidth(
        tmp_path: Path) -> None:
    topo = tmp_path / "mytopo.py"
    topo.write_text(textwrap.dedent("""
        from mininet.topo import Topo
        from mininet.link import TCLink

        class Shaped(Topo):
            def build(self, bw=10):
                s1, s2 = self.addSwitch('s1'), self.addSwitch('s2')
                h1, h2 = self.addHost('h1'), self.addHost('h2')
                self.addLink(h1, s1, cls=TCLink, bw=bw, max_queue_size=100)
                self.addLink(s1, s2)
                self.addLink(h2, s2)

        topos = {'shaped': Shaped}
    """))
    name, state = unique_lab_name("mn"), tmp_path / "state"
    up = run_cli("up", "--custom", str(topo), "--topo", "shaped,bw=5", "--name", name,
                 "--quiet", state_dir=state)
    assert up.returncode == 0, up.stderr
    try:
        inner = tmp_path / "inner.cli"
        inner.write_text("h1 echo SOURCED-$((6*7))\n")
        script = tmp_path / "iperf.cli"
        script.write_text(f"source {inner}\nh2 echo AFTER-$((6*7))\niperf h1 h2\nlinks\n"
                          "py h1.MAC()\n")
        out = run_cli("cli", name, "--script", str(script), state_dir=state, timeout=120)
        assert out.returncode == 0, out.stderr
        text = out.stdout + out.stderr
        rates = re.search(r"\*\*\* Results: \['([\d.]+) Mbits/sec'", text)
        assert rates, text
        assert 3.5 <= float(rates.group(1)) <= 5.3
        assert "(OK OK)" in text
        # `source` inside a script: the sourced file runs, then the rest of the script
        assert "SOURCED-42" in text and "AFTER-42" in text
        # h1.MAC() is the kernel's address of h1's interface
        mac = Lab.attach(name, state_dir=state)["h1"].exec(
            "cat", "/sys/class/net/eth0/address").stdout.strip()
        assert re.search(rf"^{mac}$", text, re.M), (mac, text)
    finally:
        down = run_cli("down", name, "--quiet", state_dir=state)
        assert down.returncode == 0, down.stderr


@pytest.mark.parametrize("spec", ["minimal", "linear,3", "single,3", "reversed,3",
                                  "tree,depth=2,fanout=2"])
def test_mn_builtin_topologies_come_up_and_ping(spec: str, tmp_path: Path) -> None:
    with Lab.up(from_mininet(spec), name=unique_lab_name("mn"),
                state_dir=tmp_path / "state") as lab:
        assert lab.ping() == 0.0
        hosts = [h.name for h in lab.hosts]
        assert hosts[0] == "h1" and lab["h1"].ip == "10.0.0.1"


def test_a_delay_without_netem_fails_before_building(tmp_path: Path) -> None:
    topo = tmp_path / "delayed.py"
    topo.write_text(textwrap.dedent("""
        from mininet.topo import Topo
        from mininet.link import TCLink

        class Delayed(Topo):
            def build(self):
                s1 = self.addSwitch('s1')
                self.addLink(self.addHost('h1'), s1, cls=TCLink, delay='20ms')
                self.addLink(self.addHost('h2'), s1)

        topos = {'delayed': Delayed}
    """))
    name, state = unique_lab_name("mn"), tmp_path / "state"
    up = run_cli("up", "--custom", str(topo), "--topo", "delayed", "--name", name, "--quiet",
                 state_dir=state)
    if up.returncode == 0:  # this kernel has sch_netem: the delay is real
        run_cli("down", name, "--quiet", state_dir=state)
        pytest.skip("the kernel has sch_netem; delay is supported here")
    assert "netem" in up.stderr, up.stderr
    assert not (state / name / "journal.jsonl").exists()


def test_the_docs_python_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                      ) -> None:
    text = (REPO / "docs" / "mininet.md").read_text()
    code = next(b for b in re.findall(r"```python\n(.*?)```", text, flags=re.S)
                if "from testbed import Lab" in b)
    name = unique_lab_name("py")
    assert "fanout=2)))" in code
    code = code.replace("fanout=2)))", f"fanout=2)), name={name!r})")
    monkeypatch.setenv("TESTBED_STATE_DIR", str(tmp_path / "state"))
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(code, "docs/mininet.md", "exec"), {})  # noqa: S102 - our own docs
    out = printed.getvalue()
    assert "1 received" in out and "lost: 0.0 %" in out, out
    assert "lost with s1-s2 down: 100.0 %" in out, out
    rate = re.search(r"h1 -> h4: ([\d.]+) Mbit/s", out)
    assert rate and float(rate.group(1)) > 10, out  # unshaped veths: far above 10 Mbit/s
    assert not (tmp_path / "state" / name).exists()


def test_the_interactive_cli_completes_names_and_ctrl_d_leaves_the_lab_up(make_lab) -> None:  # type: ignore[no-untyped-def]
    """At a real prompt (a pty): Tab completes a node name with a dash, a command runs in
    that node, Ctrl-C stops a command and keeps the prompt, Ctrl-D leaves the lab up."""
    pexpect = pytest.importorskip("pexpect")
    lab = make_lab("""
        nodes:
          core: {kind: router}
          server: {kind: host, uplink: {to: core}}
          home-nat: {kind: nat, uplink: {to: core}}
          home-pc: {kind: host, uplink: {to: home-nat}}
    """)
    env = {**os.environ, "TESTBED_STATE_DIR": str(lab.state.root), "INPUTRC": "/dev/null"}
    child = pexpect.spawn(sys.executable, ["-m", "testbed", "cli", lab.name], env=env,
                          cwd=str(REPO), encoding="utf-8", timeout=30)
    try:
        child.expect_exact("mininet> ")
        child.send("home-pc ping -c1 -W2 ser\t")
        child.expect_exact("server")
        child.send("\r")
        child.expect(r"1 packets transmitted, 1 received")
        child.expect_exact("mininet> ")
        child.send("home-n\t")
        child.expect_exact("home-nat")
        child.send(" ip -br addr show dev eth1\r")
        child.expect(r"eth1\S* +UP +192\.168\.1\.1/24")
        child.expect_exact("mininet> ")
        child.sendline("server sleep 30")
        child.expect_exact("server sleep 30")
        time.sleep(0.5)
        child.sendintr()
        child.expect_exact("mininet> ", timeout=10)
        child.sendeof()
        child.expect_exact(f"lab '{lab.name}' is still up")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0, child.before
    assert lab.state.exists()
    assert lab["home-pc"].exec("ping", "-c1", "-W2", lab.addr("server")).returncode == 0


def test_a_script_with_refused_commands_exits_1_after_running_the_rest(  # type: ignore[no-untyped-def]
        make_lab, tmp_path: Path) -> None:
    lab = make_lab("""
        nodes:
          core: {kind: router}
          a: {kind: host, uplink: {to: core}}
          b: {kind: host, uplink: {to: core}}
    """)
    path = tmp_path / "typos.cli"
    path.write_text("pingal\nlink a b down\na echo STILL-RAN\niperf a\n")
    result = run_cli("cli", lab.name, "--script", str(path), state_dir=lab.state.root,
                     timeout=60)
    out = result.stdout + result.stderr
    assert result.returncode == 1, out
    assert "*** Unknown command: pingal" in out
    assert "no link between a and b" in out
    assert "STILL-RAN" in out
    assert f"*** 3 command(s) of {path} were refused or failed" in out
    assert lab.state.exists()
