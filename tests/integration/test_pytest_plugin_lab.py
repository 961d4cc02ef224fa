"""The pytest plugin on a real lab, as a user's CI would use it (a separate pytest process
that finds the plugin through its pytest11 entry point): `lab` from a topology marker,
a declared link capture and the `capture` factory, checks over the pcaps, artefacts
kept for the failing test only, and every lab removed afterwards."""

from __future__ import annotations

import json
import subprocess
import textwrap

import pytest

pytestmark = pytest.mark.root
pytest_plugins = ["pytester"]

TOPOLOGY = """\
name: plug
nodes:
  core: {kind: router}
  a: {kind: host, uplink: {to: core, bandwidth: 10Mbit, capture: {filter: icmp}}}
  b: {kind: host, uplink: {to: core, bandwidth: 10Mbit}}
"""

TESTS = """\
import json
from pathlib import Path

import pytest

LABS = Path(__file__).parent / "labs.txt"


@pytest.mark.topology("plug.yaml")
def test_ping_is_captured_and_checked(lab, capture):
    LABS.open("a").write(lab.name + "\\n")
    with capture("b", "icmp") as on_b:
        assert lab.exec("a", "ping", "-c", "3", "-i", "0.2", lab.addr("b")).returncode == 0
    assert on_b.packets == 6 and on_b.dropped == 0 and on_b.pcap.stat().st_size > 0
    result = lab.check(f'''
- {{check: packets, capture: b-eth0, from: a, to: b, proto: icmp, min: 3, max: 3}}
- {{check: packets, capture: a-eth0, from: b, to: a, proto: icmp, min: 3, max: 3}}
- {{check: no_packets, capture: a-eth0, proto: udp}}
''')
    result.assert_passed()


@pytest.mark.topology("plug.yaml")
def test_fails_on_purpose(lab, capture):
    LABS.open("a").write(lab.name + "\\n")
    on_b = capture("b:eth0", "icmp", name="kept")
    lab.exec("a", "ping", "-c", "2", "-i", "0.2", lab.addr("b"))
    on_b.stop()
    assert on_b.packets == 0, "on purpose: 4 packets were captured"
"""


def test_plugin_runs_a_real_lab_and_keeps_only_the_failing_tests_pcaps(
        pytester: pytest.Pytester) -> None:
    pytester.makefile(".yaml", plug=TOPOLOGY)
    pytester.makepyfile(test_user=TESTS)
    results = pytester.path / "results"
    run = pytester.runpytest_subprocess("--testbed-results", str(results), timeout=120)
    run.assert_outcomes(passed=1, failed=1)
    run.stdout.fnmatch_lines(["*AssertionError: on purpose: 4 packets were captured*"])
    kept = results / "test_user.py_test_fails_on_purpose"
    assert sorted(p.name for p in results.iterdir()) == [kept.name]
    index = json.loads((kept / "captures" / "index.json").read_text())
    by_name = {entry["name"]: entry for entry in index}
    assert set(by_name) == {"a-eth0", "kept"}  # the topology's capture and the fixture's
    assert by_name["kept"]["packets"] == 4 and by_name["a-eth0"]["packets"] == 4
    assert (kept / "captures" / "kept.pcap").stat().st_size > 0
    labs = (pytester.path / "labs.txt").read_text().split()
    assert len(labs) == 2
    namespaces = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True,
                                check=True).stdout
    for name in labs:
        assert f"tb-{name}-" not in namespaces, f"lab {name} was left behind"


def test_plugin_skips_without_root_and_says_why(pytester: pytest.Pytester) -> None:
    pytester.makefile(".yaml", plug=TOPOLOGY)
    pytester.makepyfile(test_user=textwrap.dedent("""\
        import os
        import pytest

        @pytest.fixture(autouse=True)
        def not_root(monkeypatch):
            monkeypatch.setattr(os, "geteuid", lambda: 1000)

        @pytest.mark.topology("plug.yaml")
        def test_needs_a_lab(lab):
            pass
        """))
    run = pytester.runpytest_subprocess("-rs", timeout=60)
    run.assert_outcomes(skipped=1)
    run.stdout.fnmatch_lines(["*needs root: builds real network namespaces*"])
