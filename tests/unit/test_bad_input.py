"""Bad topologies: each mistake is reported as the user will read it - file, line, key path
and what is allowed - and `testbed validate` exits 2 without creating anything.

Line numbers in the YAML snippets are counted from the first line of the snippet.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from testbed.errors import Problem, TopologyError
from testbed.plan.build import build_plan
from testbed.topology.loader import load_topology, load_topology_text

REPO = Path(__file__).resolve().parents[2]


def problems_of(tmp_path: Path, text: str,
                overrides: dict[str, str] | None = None) -> tuple[Path, list[Problem]]:
    """Load and plan (as `validate` does); return the file and every problem reported."""
    path = tmp_path / "topo.yaml"
    path.write_text(textwrap.dedent(text))
    with pytest.raises(TopologyError) as info:
        build_plan(load_topology(path, overrides))
    for problem in info.value.problems:
        assert problem.file == str(path), problem
    return path, info.value.problems


def only_problem(tmp_path: Path, text: str, overrides: dict[str, str] | None = None,
                 ) -> Problem:
    path, problems = problems_of(tmp_path, text, overrides)
    assert len(problems) == 1, "\n".join(map(str, problems))
    problem = problems[0]
    # what the user reads: "topo.yaml:LINE: key.path: message"
    assert str(problem).startswith(f"{path}:{problem.line}: {problem.path}: ")
    return problem


def validate_cli(tmp_path: Path, text: str, *args: str) -> subprocess.CompletedProcess[str]:
    """`testbed validate topo.yaml` run by a user in an empty directory."""
    (tmp_path / "topo.yaml").write_text(textwrap.dedent(text))
    env = dict(os.environ, PYTHONPATH=str(REPO), TESTBED_STATE_DIR=str(tmp_path / "state"))
    return subprocess.run([sys.executable, "-m", "testbed", "validate", "topo.yaml", *args],
                          capture_output=True, text=True, cwd=tmp_path, env=env, timeout=60)


def assert_nothing_created(tmp_path: Path) -> None:
    assert sorted(p.name for p in tmp_path.iterdir()) == ["topo.yaml"]


# --- the command line -------------------------------------------------------------------

def test_validate_accepts_a_good_file_and_exits_0(tmp_path: Path) -> None:
    result = validate_cli(tmp_path, """\
        name: lab
        nodes:
          core: {kind: router}
          pc: {kind: host, uplink: {to: core, bandwidth: 10Mbit}}
        """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("topo.yaml: valid. lab 'lab': 2 nodes (1 host, 1 router)")
    assert_nothing_created(tmp_path)


def test_validate_cli_unknown_key_exits_2_with_file_line_path(tmp_path: Path) -> None:
    result = validate_cli(tmp_path, """\
        name: lab
        nodes:
          core: {kind: router}
          pc:
            kind: host
            uplnk: {to: core}
        """)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith("error: topology has 1 problem:\n")
    assert ("  topo.yaml:6: nodes.pc.uplnk: unknown key 'uplnk' (did you mean 'uplink'?); "
            "allowed: kind, group, count, vary, labels, uplink, links,") in result.stderr
    assert_nothing_created(tmp_path)


def test_validate_cli_mbps_says_to_write_bits_per_second(tmp_path: Path) -> None:
    result = validate_cli(tmp_path, """\
        name: lab
        nodes:
          core: {kind: router}
          pc:
            kind: host
            uplink:
              to: core
              bandwidth: 10 Mbps
        """)
    assert result.returncode == 2
    assert "topo.yaml:8: nodes.pc.uplink.bandwidth: '10 Mbps' is ambiguous" in result.stderr
    assert "write bits per second, e.g. 10Mbit" in result.stderr
    assert_nothing_created(tmp_path)


def test_validate_cli_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    result = validate_cli(tmp_path, """\
        name: lab
        nodes:
          core: {kind: router}
          pc:
            kind: [host
            uplink: {to: core}
        """)
    assert result.returncode == 2
    assert "topo.yaml:6: invalid YAML: expected ',' or ']'" in result.stderr
    assert_nothing_created(tmp_path)


def test_validate_cli_unknown_set_parameter_lists_the_known_ones(tmp_path: Path) -> None:
    result = validate_cli(tmp_path, """\
        name: lab
        params:
          homes: 3
        nodes:
          core: {kind: router}
        """, "--set", "hoems=5")
    assert result.returncode == 2
    assert ("topo.yaml:2: params.hoems: --set hoems: no such parameter; known: homes"
            in result.stderr)
    assert_nothing_created(tmp_path)


def test_validate_cli_uplink_loop_is_found_by_the_plan_checks(tmp_path: Path) -> None:
    result = validate_cli(tmp_path, """\
        name: lab
        nodes:
          a: {kind: router, uplink: {to: b}}
          b: {kind: router, uplink: {to: a}}
        """)
    assert result.returncode == 2
    assert "topo.yaml:3: nodes.a.uplink.to: uplinks form a loop: a -> b -> a" in result.stderr
    assert "topo.yaml:4: nodes.b.uplink.to: uplinks form a loop: b -> a -> b" in result.stderr
    assert_nothing_created(tmp_path)


# --- unknown keys and wrong types -------------------------------------------------------

def test_unknown_node_key_suggests_the_close_one(tmp_path: Path) -> None:
    p = only_problem(tmp_path, """\
        name: lab
        nodes:
          core: {kind: router}
          pc:
            kind: host
            uplnk: {to: core}
        """)
    assert (p.line, p.path) == (6, "nodes.pc.uplnk")
    assert p.message == ("unknown key 'uplnk' (did you mean 'uplink'?); allowed: kind, group, "
                         "count, vary, labels, uplink, links, command, env, lan_pool, switch, nat, "
                         "firewall, proxy, supernode, registrar, sip_ua, held_back, origin, "
                         "bittorrent")


def test_unknown_link_key_is_reported_at_its_own_line(tmp_path: Path) -> None:
    p = only_problem(tmp_path, """\
        name: lab
        nodes:
          core: {kind: router}
          pc:
            kind: host
            uplink:
              to: core
              bandwith: 10Mbit
        """)
    assert (p.line, p.path) == (8, "nodes.pc.uplink.bandwith")
    assert "did you mean 'bandwidth'?" in p.message
    assert "allowed: bandwidth, up, down, loss, delay, jitter, queue, to, ip, peer_ip" in p.message


def test_unknown_top_level_key(tmp_path: Path) -> None:
    p = only_problem(tmp_path, """\
        name: lab
        node: {}
        nodes:
          core: {kind: router}
        """)
    assert (p.line, p.path) == (2, "node")
    assert "unknown key 'node' (did you mean 'nodes'?); allowed: name, description" in p.message


@pytest.mark.parametrize(("setting", "path", "message"), [
    ("labels: [os, windows]", "nodes.pc.labels", "expected a mapping, got a list"),
    ("kind: 5", "nodes.pc.kind", "expected a string, got int 5"),
    ("uplink: {to: core, queue: lots}", "nodes.pc.uplink.queue",
     "expected an integer, got str 'lots'"),
    ("uplink: {to: core, queue: 1}", "nodes.pc.uplink.queue",
     "1 is out of range; allowed: 2 to 100000"),
    ("uplink: core", "nodes.pc.uplink",
     "expected a mapping with keys bandwidth, up, down, loss, delay, jitter, queue, to, ip, "
     "peer_ip, capture, got str 'core'"),
    ("nat: {type: cone}", "nodes.pc.nat.type",
     "'cone' is not allowed; choose one of: full-cone, restricted-cone, "
     "port-restricted-cone, symmetric"),
    ("command: {run: x}", "nodes.pc.command",
     "expected a string or a list, got a mapping"),
])
def test_wrong_types_say_what_is_expected(tmp_path: Path, setting: str, path: str,
                                          message: str) -> None:
    kind = "" if setting.startswith("kind") else "nat" if setting.startswith("nat") else "host"
    p = only_problem(tmp_path, f"""\
        name: lab
        nodes:
          core: {{kind: router}}
          pc:
            {f"kind: {kind}" if kind else "group: null"}
            {setting}
        """)
    assert (p.line, p.path, p.message) == (6, path, message)


# --- units -------------------------------------------------------------------------------

@pytest.mark.parametrize(("rate", "suggestion"), [("10 Mbps", "10Mbit"), ("10Mbps", "10Mbit"),
                                                  ("512kbps", "512kbit"), ("1MB", "1Mbit")])
def test_bytes_per_second_is_rejected_with_the_bit_spelling(tmp_path: Path, rate: str,
                                                            suggestion: str) -> None:
    p = only_problem(tmp_path, f"""\
        name: lab
        nodes:
          core: {{kind: router}}
          pc:
            kind: host
            uplink:
              to: core
              up: {rate}
        """)
    assert (p.line, p.path) == (8, "nodes.pc.uplink.up")
    assert p.message == (f"{rate!r} is ambiguous (bits or bytes? tc reads 'bps' as bytes per "
                         f"second); write bits per second, e.g. {suggestion}")


def test_a_word_for_a_rate_lists_the_units(tmp_path: Path) -> None:
    p = only_problem(tmp_path, """\
        name: lab
        nodes:
          core: {kind: router}
          pc: {kind: host, uplink: {to: core, bandwidth: fast}}
        """)
    assert (p.line, p.path) == (4, "nodes.pc.uplink.bandwidth")
    assert p.message == ("expected a bit rate such as 512kbit, 10Mbit or 1Gbit "
                         "(units: bit, kbit, Mbit, Gbit), got 'fast'")


def test_bad_duration_in_an_inherited_kind_is_reported_where_written(tmp_path: Path) -> None:
    p = only_problem(tmp_path, """\
        name: lab
        kinds:
          nat:
            nat: {udp_timeout: 30}
        nodes:
          core: {kind: router}
          n1: {kind: nat, uplink: {to: core}}
          n2: {kind: nat, uplink: {to: core}}
        """)
    assert (p.line, p.path) == (4, "kinds.nat.nat.udp_timeout")  # once, not per node
    assert p.message.startswith("expected a duration such as 250ms, 30s, 5m")


# --- duplicate names -----------------------------------------------------------------------

def test_yaml_duplicate_node_key(tmp_path: Path) -> None:
    p = only_problem(tmp_path, """\
        name: lab
        nodes:
          core: {kind: router}
          pc:
            kind: host
          pc:
            kind: host
        """)
    assert (p.line, p.path) == (6, "nodes.pc")
    assert p.message.startswith("duplicate key 'pc' (first at line 4); a key may appear only "
                                "once in a mapping")


def test_every_duplicate_key_is_reported_at_once(tmp_path: Path) -> None:
    _, problems = problems_of(tmp_path, """\
        name: lab
        nodes:
          core: {kind: router}
          pc: {kind: host, uplink: {to: core}}
          pc: {kind: host, uplink: {to: core, to: core}}
        """)
    assert [(p.line, p.path) for p in problems] == [(5, "nodes.pc"), (5, "nodes.pc.uplink.to")]


def test_yaml_merge_key_may_be_overridden_without_a_duplicate_report(tmp_path: Path) -> None:
    path = tmp_path / "topo.yaml"
    path.write_text(textwrap.dedent("""\
        name: lab
        groups:
          unused: &base {labels: {a: 1}}
        nodes:
          core:
            <<: *base
            kind: router
            labels: {b: 2}
        """))
    assert load_topology(path).nodes["core"].labels == {"b": 2}


def test_counted_template_colliding_with_a_plain_node(tmp_path: Path) -> None:
    p = only_problem(tmp_path, """\
        name: lab
        nodes:
          core: {kind: router}
          pc2: {kind: host, uplink: {to: core}}
          pc{n}:
            count: 3
            kind: host
            uplink: {to: core}
        """)
    assert (p.line, p.path) == (5, "nodes.pc{n}")
    assert p.message == ("duplicate node name 'pc2': made by 'pc{n}' with n=2 at line 5 and by "
                         "'pc2' at line 4; node names must be unique")


# --- links and uplinks ---------------------------------------------------------------------

def test_uplink_to_a_node_that_does_not_exist(tmp_path: Path) -> None:
    p = only_problem(tmp_path, """\
        name: lab
        nodes:
          core: {kind: router}
          pc:
            kind: host
            uplink:
              bandwidth: 10Mbit
              to: gw
        """)
    assert (p.line, p.path) == (8, "nodes.pc.uplink.to")
    assert p.message == "uplink to unknown node 'gw'; nodes: core, pc"


def test_link_to_a_misspelt_node_suggests_the_name(tmp_path: Path) -> None:
    p = only_problem(tmp_path, """\
        name: lab
        nodes:
          core: {kind: router}
          r2:
            kind: router
            links:
              - {to: core}
              - {to: cor}
        """)
    assert (p.line, p.path) == (8, "nodes.r2.links[1].to")
    assert p.message == "link to unknown node 'cor' (did you mean 'core'?)"


def test_top_level_link_to_unknown_node(tmp_path: Path) -> None:
    p = only_problem(tmp_path, """\
        name: lab
        nodes:
          core: {kind: router}
          r2: {kind: router}
        links:
          - between: [core, r3]
        """)
    assert (p.line, p.path) == (6, "links[0].between[1]")
    assert p.message == "link to unknown node 'r3'; nodes: core, r2"


def test_uplink_to_a_host_lists_the_gateway_kinds(tmp_path: Path) -> None:
    p = only_problem(tmp_path, """\
        name: lab
        nodes:
          core: {kind: router}
          server: {kind: host, uplink: {to: core}}
          pc:
            kind: host
            uplink: {to: server}
        """)
    assert (p.line, p.path) == (7, "nodes.pc.uplink.to")
    assert p.message == ("uplink to server (kind host): an uplink must point at a gateway "
                         "kind (router, switch, nat)")


def test_uplink_loop_is_reported_at_each_uplink_in_it(tmp_path: Path) -> None:
    _, problems = problems_of(tmp_path, """\
        name: lab
        nodes:
          a:
            kind: router
            uplink: {to: c}
          b:
            kind: router
            uplink: {to: a}
          c:
            kind: router
            uplink: {to: b}
        """)
    assert [(p.line, p.path) for p in problems] == [
        (5, "nodes.a.uplink.to"), (8, "nodes.b.uplink.to"), (11, "nodes.c.uplink.to")]
    assert problems[0].message == ("uplinks form a loop: a -> c -> b -> a; follow the uplinks "
                                   "and one must end at a node without uplink")


def test_jitter_without_delay(tmp_path: Path) -> None:
    p = only_problem(tmp_path, """\
        name: lab
        nodes:
          core: {kind: router}
          pc:
            kind: host
            uplink:
              to: core
              jitter: 5ms
        """)
    assert (p.line, p.path) == (8, "nodes.pc.uplink.jitter")
    assert p.message == "jitter varies the delay, so it needs delay: too, e.g. delay: 20ms"


# --- addresses -----------------------------------------------------------------------------

def test_the_same_pinned_address_twice_in_the_public_realm(tmp_path: Path) -> None:
    _, problems = problems_of(tmp_path, """\
        name: lab
        nodes:
          core: {kind: router}
          a:
            kind: host
            uplink: {to: core, ip: 198.18.0.2/24}
          b:
            kind: host
            uplink:
              to: core
              ip: 198.18.0.2/24
        """)
    assert [(p.line, p.path) for p in problems] == [(11, "nodes.b.uplink.ip")] * 2
    assert problems[0].message == ("address 198.18.0.2 is used twice in realm public: by a and "
                                   "b; each address may be used once per realm")
    assert problems[1].message.startswith("subnet 198.18.0.0/24 overlaps 198.18.0.0/24 on "
                                          "another link in realm public")


def test_one_subnet_pinned_on_two_links(tmp_path: Path) -> None:
    p = only_problem(tmp_path, """\
        name: lab
        nodes:
          core: {kind: router}
          a: {kind: host, uplink: {to: core, ip: 198.18.0.2/24}}
          b: {kind: host, uplink: {to: core, ip: 198.18.0.3/24}}
        """)
    assert (p.line, p.path) == (5, "nodes.b.uplink.ip")
    assert p.message == ("subnet 198.18.0.0/24 overlaps 198.18.0.0/24 on another link in realm "
                         "public; each link (or switch segment) needs its own subnet")


def test_pinned_peer_address_outside_the_pinned_subnet_of_the_link(tmp_path: Path) -> None:
    p = only_problem(tmp_path, """\
        name: lab
        nodes:
          core: {kind: router}
          pc:
            kind: host
            uplink:
              to: core
              ip: 198.18.0.2/24
              peer_ip: 198.18.1.1/24
        """)
    assert (p.line, p.path) == (9, "nodes.pc.uplink.peer_ip")
    assert p.message.startswith("pinned address 198.18.1.1/24 is not in 198.18.0.0/24, the "
                                "subnet another pinned address gives this link")


def test_same_private_address_behind_two_nats_is_fine(tmp_path: Path) -> None:
    path = tmp_path / "topo.yaml"
    path.write_text(textwrap.dedent("""\
        name: lab
        nodes:
          core: {kind: router}
          nat1: {kind: nat, uplink: {to: core}}
          nat2: {kind: nat, uplink: {to: core}}
          pc1: {kind: host, uplink: {to: nat1, ip: 192.168.7.2/24}}
          pc2: {kind: host, uplink: {to: nat2, ip: 192.168.7.2/24}}
        """))
    plan = build_plan(load_topology(path))
    assert plan.nodes["pc1"].addresses() == plan.nodes["pc2"].addresses() == ["192.168.7.2"]


# --- count ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("count", "shown"), [("1e6", "'1e6'"),
                                              ("1000000", "1000000"), ("-3", "-3"),
                                              ("2.5", "2.5"), ("many", "'many'")])
def test_count_out_of_range(tmp_path: Path, count: str, shown: str) -> None:
    p = only_problem(tmp_path, f"""\
        name: lab
        nodes:
          core: {{kind: router}}
          pc{{n}}:
            kind: host
            count: {count}
            uplink: {{to: core}}
        """)
    assert (p.line, p.path) == (6, "nodes.pc{n}.count")
    assert p.message == f"count must be a whole number from 0 to 30000, got {shown}"


def test_count_zero_makes_no_node() -> None:
    topology = load_topology_text(textwrap.dedent("""\
        name: lab
        params: {extra: 0}
        nodes:
          core: {kind: router}
          pc{n}:
            kind: host
            count: ${extra}
            uplink: {to: core}
        """))
    assert sorted(topology.nodes) == ["core"]


def test_count_without_n_in_the_name(tmp_path: Path) -> None:
    p = only_problem(tmp_path, """\
        name: lab
        nodes:
          core: {kind: router}
          pc:
            count: 3
            kind: host
        """)
    assert (p.line, p.path) == (4, "nodes.pc")
    assert p.message == "a counted node's name needs {n}, e.g. 'home{n:03}'"


# --- kinds, groups, sections ---------------------------------------------------------------

def test_unknown_kind_lists_the_known_kinds(tmp_path: Path) -> None:
    p = only_problem(tmp_path, """\
        name: lab
        nodes:
          core: {kind: router}
          pc:
            uplink: {to: core}
            kind: hots
        """)
    assert (p.line, p.path) == (6, "nodes.pc.kind")
    assert p.message == ("unknown node kind 'hots'; known kinds: bt_peer, host, login, nat, "
                         "origin, peer, proxy, registrar, router, sip_ua, switch, tracker")


def test_unknown_group_lists_the_groups(tmp_path: Path) -> None:
    p = only_problem(tmp_path, """\
        name: lab
        groups:
          home-pc: {kind: host}
          office-pc: {kind: host}
        nodes:
          core: {kind: router}
          pc:
            kind: host
            group: homepc
        """)
    assert (p.line, p.path) == (9, "nodes.pc.group")
    assert p.message == "unknown group 'homepc'; groups: home-pc, office-pc"


@pytest.mark.parametrize(("node", "line", "path", "message"), [
    ("pc: {kind: host, uplink: {to: core}, nat: {type: symmetric}}", 4, "nodes.pc.nat",
     "nat: does not apply to kind host; it applies to: nat"),
    ("r2: {kind: router, supernode: {max_children: 500}}", 4, "nodes.r2.supernode",
     "supernode: does not apply to kind router; it applies to: peer"),
    ("pc: {kind: host, uplink: {to: core}, switch: {type: ovs}}", 4, "nodes.pc.switch",
     "switch: does not apply to kind host; it applies to: switch"),
])
def test_a_section_on_a_kind_it_does_not_apply_to(tmp_path: Path, node: str, line: int,
                                                  path: str, message: str) -> None:
    p = only_problem(tmp_path, f"name: lab\nnodes:\n  core: {{kind: router}}\n  {node}\n")
    assert (p.line, p.path) == (line, path)
    assert p.message == message


def test_an_unknown_switch_type_names_the_allowed_ones(tmp_path: Path) -> None:
    p = only_problem(tmp_path, """\
        name: lab
        nodes:
          core: {kind: router}
          lan: {kind: switch, uplink: {to: core}, switch: {type: openvswitch}}
        """)
    assert p.line == 4 and p.path == "nodes.lan.switch.type"
    assert "'openvswitch'" in p.message and "linux, ovs" in p.message


def test_proxy_only_firewall_naming_a_node_that_is_not_a_proxy(tmp_path: Path) -> None:
    p = only_problem(tmp_path, """\
        name: lab
        nodes:
          core: {kind: router}
          fw:
            kind: nat
            uplink: {to: core}
            firewall:
              egress: proxy-only
              proxy: pc
          lan: {kind: switch, uplink: {to: fw}}
          squid: {kind: proxy, uplink: {to: lan}}
          pc: {kind: host, uplink: {to: lan}}
        """)
    assert (p.line, p.path) == (9, "nodes.fw.firewall.proxy")
    assert p.message == "'pc' is not a proxy node; proxy nodes: squid"


# --- params and the lab name ---------------------------------------------------------------

def test_unknown_param_is_reported_once(tmp_path: Path) -> None:
    p = only_problem(tmp_path, """\
        name: lab
        params:
          homes: 3
        nodes:
          core: {kind: router}
          pc{n}:
            kind: host
            count: ${hosts}
        """)
    assert (p.line, p.path) == (8, "nodes.pc{n}.count")
    assert p.message == ("cannot substitute '${hosts}': unknown name 'hosts'; known: homes "
                         "(parameters are declared under params:)")


def test_unknown_set_parameter(tmp_path: Path) -> None:
    p = only_problem(tmp_path, """\
        name: lab
        params:
          homes: 3
          sns: 1
        nodes:
          core: {kind: router}
        """, overrides={"home": "5"})
    assert (p.line, p.path) == (2, "params.home")
    assert p.message == "--set home: no such parameter; known: homes, sns"


@pytest.mark.parametrize("name", ["thisnameistoolong", "Lab", "lab_1", "1lab", "lab.x"])
def test_bad_lab_name(tmp_path: Path, name: str) -> None:
    p = only_problem(tmp_path, f"""\
        description: a lab
        name: {name}
        nodes:
          core: {{kind: router}}
        """)
    assert (p.line, p.path) == (2, "name")
    assert p.message == ("lab name must be 1-12 chars of a-z, 0-9 and '-', starting with a "
                         f"letter; got {name!r}")


def test_twelve_char_lab_name_is_fine(tmp_path: Path) -> None:
    path = tmp_path / "topo.yaml"
    path.write_text("name: abcdefghij-1\nnodes:\n  core: {kind: router}\n")
    assert load_topology(path).name == "abcdefghij-1"


# --- all at once ---------------------------------------------------------------------------

def test_several_problems_are_all_reported_at_once_in_line_order(tmp_path: Path) -> None:
    path, problems = problems_of(tmp_path, """\
        name: Bad_Name
        nodes:
          core: {kind: router}
          pc1:
            kind: hots
            uplink: {to: core}
          pc2:
            kind: host
            colour: red
            uplink: {to: core, bandwidth: 10Mbps}
          pc3:
            kind: host
            uplink: {to: gw, jitter: 1ms}
          pc4:
            kind: 5
        """)
    assert [(p.line, p.path) for p in problems] == [
        (1, "name"),
        (5, "nodes.pc1.kind"),
        (9, "nodes.pc2.colour"),
        (10, "nodes.pc2.uplink.bandwidth"),
        (13, "nodes.pc3.uplink.to"),
        (13, "nodes.pc3.uplink.jitter"),
        (15, "nodes.pc4.kind"),  # once: not again as "no kind"
    ]
    text = str(TopologyError(problems))
    assert text.startswith("topology has 7 problems:\n")
    assert f"  {path}:15: nodes.pc4.kind: expected a string, got int 5" in text


def test_a_wrong_value_is_not_reported_again_by_later_checks(tmp_path: Path) -> None:
    _, problems = problems_of(tmp_path, """\
        name: lab
        groups:
          g: {kind: 5}
        nodes:
          core: {kind: router}
          a: {group: g, uplink: {to: core}}
          b: {group: g, uplink: {to: a}}
          pc:
            kind: host
            uplink: {to: 5}
            links:
              - {bandwidth: 1Mbit}
        """)
    assert [(p.line, p.path, p.message) for p in problems] == [
        (3, "groups.g.kind", "expected a string, got int 5"),  # not per node, not "no kind"
        (10, "nodes.pc.uplink.to", "expected a string, got int 5"),
        (12, "nodes.pc.links[0].to", "a link needs to: (the other node)"),
    ]
