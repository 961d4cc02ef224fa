"""The pytest plugin's own logic, through pytester (no root): it is installed as a pytest11
entry point, registers its options and marker, reports a misused marker clearly, keeps a
failing test's artefacts and removes a passing test's, and always takes its lab down
(unless asked to keep a failing test's). Bring-up is replaced by a recorder here; the
real one is in tests/integration/test_pytest_plugin_lab.py."""

from __future__ import annotations

import json
import textwrap
from importlib.metadata import entry_points
from pathlib import Path

import pytest
import yaml  # noqa: F401 - imported before any in-process run: see below

import testbed.lab.lab  # noqa: F401
import testbed.lab.lifecycle  # noqa: F401

# pytester's in-process runs drop the modules they imported. Imported here first, they
# stay: a yaml re-imported later no longer matches its C extension (libyaml), whose
# emitter then fails every dump ("expected SCALAR, SEQUENCE-START, ..."), and a lifecycle
# module re-imported by a later run is not the one its conftest replaced, so that run
# built real labs (as root, and with --testbed-keep-lab-on-failure left one up). This
# file run alone did both.

pytest_plugins = ["pytester"]

TOPOLOGY = """\
name: tiny
nodes:
  core: {kind: router}
  a: {kind: host, uplink: {to: core}}
  b: {kind: host, uplink: {to: core}}
"""

# bring-up and tear-down recorded into calls.jsonl instead of touching the kernel
FAKE_LIFECYCLE = """\
import json
from pathlib import Path

import pytest

import testbed.pytest_plugin
from testbed.lab import lifecycle

CALLS = Path(__file__).parent / "calls.jsonl"


def record(op, name):
    with open(CALLS, "a") as out:
        out.write(json.dumps({"op": op, "lab": name}) + "\\n")


@pytest.fixture(autouse=True)
def fake_lab(monkeypatch):
    monkeypatch.setenv("TESTBED_STATE_DIR", str(Path(__file__).parent / "state"))
    monkeypatch.setattr(testbed.pytest_plugin, "require_root", lambda: None)
    monkeypatch.setattr(lifecycle, "bring_up",
                        lambda topology, plan, backend, state, progress:
                        record("up", topology.name))
    monkeypatch.setattr(lifecycle, "tear_down",
                        lambda backend, state, progress: record("down", state.lab) or [])
"""


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    """In-process: the outer session imported testbed already, which is expected."""
    return pytester.runpytest("-W", "ignore::pytest.PytestAssertRewriteWarning", *args)


def test_the_plugin_is_installed_as_a_pytest11_entry_point() -> None:
    plugins = {e.name: e.value for e in entry_points(group="pytest11")}
    assert plugins.get("testbed") == "testbed.pytest_plugin"


def test_options_and_marker_are_registered(pytester: pytest.Pytester) -> None:
    result = run(pytester, "--help")
    result.stdout.fnmatch_lines(["*--testbed-keep-lab-on-failure*",
                                 "*--testbed-results=DIR*"])
    markers = run(pytester, "--markers")
    markers.stdout.fnmatch_lines(["@pytest.mark.topology(path, set=None, name=None):*"])


def test_a_misused_topology_marker_fails_with_how_to_write_it(pytester: pytest.Pytester
                                                               ) -> None:
    pytester.makefile(".yaml", tiny=TOPOLOGY)
    pytester.makepyfile(textwrap.dedent("""\
        import pytest

        def test_no_marker(lab):
            pass

        @pytest.mark.topology(1)
        def test_not_a_path(lab):
            pass

        @pytest.mark.topology("tiny.yaml", set="homes=3")
        def test_set_not_a_dict(lab):
            pass

        @pytest.mark.topology("tiny.yaml", sett={})
        def test_unknown_keyword(lab):
            pass

        @pytest.mark.topology("missing.yaml")
        def test_missing_file(lab):
            pass

        @pytest.mark.topology("tiny.yaml", set={"homes": 3})
        def test_unknown_parameter(lab):
            pass
        """))
    result = run(pytester, )
    result.assert_outcomes(errors=6)
    result.stdout.fnmatch_lines_random([
        "*the `lab` fixture needs a topology: decorate the test with "
        "@pytest.mark.topology(\"topologies/NAME.yaml\", set={...})*",
        "*@pytest.mark.topology takes one topology file path; got (1,)*",
        "*set= must be a dict of topology parameters*got 'homes=3'*",
        "*unknown keyword sett; it takes set={name: value}, name=*, or for a Mininet "
        "topology topo=*",
        "*file 'missing.yaml' not found (looked in: *",
        "*--set homes: no such parameter; known: none declared*",
    ])


def test_artefacts_are_kept_for_failing_tests_only(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(textwrap.dedent("""\
        def test_passes(testbed_artifacts):
            (testbed_artifacts / "some.pcap").write_bytes(b"x")

        def test_fails(testbed_artifacts):
            (testbed_artifacts / "some.pcap").write_bytes(b"x")
            assert False, "on purpose"
        """))
    results = pytester.path / "out"
    result = run(pytester, "--testbed-results", str(results))
    result.assert_outcomes(passed=1, failed=1)
    kept = sorted(p.relative_to(results).as_posix() for p in results.rglob("*.pcap"))
    assert kept == ["test_artefacts_are_kept_for_failing_tests_only.py_test_fails/some.pcap"]
    result.stdout.fnmatch_lines(["*testbed: kept for failing tests*",
                                 f"*::test_fails: {results}/*test_fails"])
    # all passing: nothing is left behind, not even the results directory
    pytester.makepyfile(test_more="def test_ok(testbed_artifacts):\n    pass\n")
    again = run(pytester, "test_more.py", "--testbed-results", str(pytester.path / "x"))
    again.assert_outcomes(passed=1)
    assert not (pytester.path / "x").exists()


def _calls(pytester: pytest.Pytester) -> list[dict[str, str]]:
    path = pytester.path / "calls.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.parametrize("keep", [False, True])
def test_the_lab_always_goes_down_unless_kept_for_a_failure(pytester: pytest.Pytester,
                                                            keep: bool) -> None:
    pytester.makefile(".yaml", tiny=TOPOLOGY)
    pytester.makeconftest(FAKE_LIFECYCLE)
    pytester.makepyfile(textwrap.dedent("""\
        import pytest

        @pytest.mark.topology("tiny.yaml", name="passing")
        def test_passes(lab):
            assert lab.name == "passing" and lab.addr("a") != lab.addr("b")
            assert lab.ns("a") == "tb-passing-a"

        @pytest.mark.topology("tiny.yaml", name="failing")
        def test_fails(lab):
            assert False, "on purpose"

        @pytest.mark.topology("tiny.yaml")
        def test_unique_name(lab):
            assert lab.name.startswith("pt") and len(lab.name) <= 12
        """))
    args = ["--testbed-keep-lab-on-failure"] if keep else []
    result = run(pytester, "--testbed-results", str(pytester.path / "out"), *args)
    result.assert_outcomes(passed=2, failed=1)
    calls = _calls(pytester)
    ups = [c["lab"] for c in calls if c["op"] == "up"]
    downs = [c["lab"] for c in calls if c["op"] == "down"]
    assert ups[:2] == ["passing", "failing"] and len(ups) == 3
    if keep:
        assert downs == [ups[0], ups[2]]
        result.stdout.fnmatch_lines(["*::test_fails: lab failing left up: sudo testbed "
                                     "inspect --lab failing; sudo testbed down failing"])
    else:
        assert downs == ups


def test_the_lab_of_a_mininet_topology(pytester: pytest.Pytester) -> None:
    # topo= and custom= as mn --topo/--custom; custom files relative to the test file
    pytester.makeconftest(FAKE_LIFECYCLE)
    pytester.makepyfile(mytopo=textwrap.dedent("""\
        from mininet.topo import Topo

        class Pair(Topo):
            def build(self, bw=10):
                s1 = self.addSwitch("s1")
                self.addLink(self.addHost("h1"), s1, bw=bw)
                self.addLink(self.addHost("h2"), s1)

        topos = {"pair": Pair}
        """))
    pytester.makepyfile(textwrap.dedent("""\
        import pytest

        @pytest.mark.topology(topo="tree,depth=2,fanout=2")
        def test_builtin(lab):
            assert [h.name for h in lab.hosts] == ["h1", "h2", "h3", "h4"]
            assert lab.addr("h4") == "10.0.0.4" and lab.name.startswith("pt")

        @pytest.mark.topology(topo="pair,bw=5", custom="mytopo.py", name="mnpair")
        def test_custom(lab):
            assert lab.name == "mnpair" and lab.addr("h2") == "10.0.0.2"
            link, = [l for l in lab.topology.links if "h1" in (l.a, l.b)]
            assert link.rate_ab == 5_000_000

        @pytest.mark.topology("tiny.yaml", topo="linear,2")
        def test_path_and_topo(lab):
            pass

        @pytest.mark.topology(topo="torus,3,3")
        def test_unsupported(lab):
            pass
        """))
    result = run(pytester, "--testbed-results", str(pytester.path / "out"))
    result.assert_outcomes(passed=2, errors=2)
    result.stdout.fnmatch_lines_random([
        "*a Mininet topology is topo=*(its arguments in it, as mn --topo)*and no path or "
        "set=; got ('tiny.yaml',) {'topo': 'linear,2'}",
        "*close loops of switches*",
    ])


def test_run_scenario_reports_bad_input_before_needing_root(pytester: pytest.Pytester
                                                           ) -> None:
    repo = Path(__file__).resolve().parents[2]
    pytester.makefile(".yaml", broken="steps:\n  - {at: 1s, action: jump}\n")
    pytester.makepyfile(textwrap.dedent(f"""\
        def test_run(run_scenario):
            run_scenario({str(repo / "topologies" / "skype-2007.yaml")!r}, "broken.yaml",
                         set={{"homes": 2}})
        """))
    result = run(pytester)
    result.assert_outcomes(failed=1)
    assert "broken.yaml:2: steps[0].action: unknown action 'jump'" in result.stdout.str()
    assert "During handling" not in result.stdout.str()
