"""Lab lifecycle rules that need no kernel: journal, rollback, one lab per name, locking."""

from __future__ import annotations

from pathlib import Path

import pytest

from testbed.backends.fake import FakeBackend
from testbed.errors import BackendError, LabError
from testbed.lab.lifecycle import bring_up, tear_down
from testbed.lab.state import LabState, find_lab, list_labs
from testbed.plan.build import build_plan
from testbed.plan.model import NetworkPlan
from testbed.progress import Progress
from testbed.topology.loader import load_topology_text
from testbed.topology.model import Topology

TOPOLOGY = """
name: unit
nodes:
  core: {kind: router}
  a: {kind: host, uplink: {to: core}}
  b: {kind: host, uplink: {to: core}}
"""

QUIET = Progress(enabled=False)


def _lab(root: Path) -> tuple[Topology, NetworkPlan, LabState]:
    topology = load_topology_text(TOPOLOGY, "unit.yaml")
    return topology, build_plan(topology), LabState(root, "unit")


def test_up_journals_every_namespace_and_down_removes_them(tmp_path: Path) -> None:
    topology, plan, state = _lab(tmp_path)
    backend = FakeBackend()
    bring_up(topology, plan, backend, state, QUIET)
    journal = state.read()
    assert set(journal.namespaces) == set(plan.namespaces())
    assert journal.status == "up"
    assert list_labs(tmp_path) == ["unit"]
    tear_down(backend, state, QUIET)
    assert backend.existing == set()
    assert list_labs(tmp_path) == []


def test_failure_half_way_rolls_back_what_was_created(tmp_path: Path) -> None:
    topology, plan, state = _lab(tmp_path)
    backend = FakeBackend(fail_after_namespaces=2)
    with pytest.raises(BackendError, match="injected failure"):
        bring_up(topology, plan, backend, state, QUIET)
    assert backend.calls == ["preflight", "build", "teardown"]
    assert backend.existing == set()
    assert not state.dir.exists()


def test_second_up_of_the_same_lab_is_refused_and_keeps_the_first(tmp_path: Path) -> None:
    topology, plan, state = _lab(tmp_path)
    backend = FakeBackend()
    bring_up(topology, plan, backend, state, QUIET)
    with pytest.raises(LabError, match="already up"):
        bring_up(topology, plan, FakeBackend(), LabState(tmp_path, "unit"), QUIET)
    assert state.read().status == "up"
    assert len(backend.existing) == len(plan.namespaces())


def test_torn_last_journal_line_after_sigkill_is_ignored(tmp_path: Path) -> None:
    state = LabState(tmp_path, "unit")
    state.create()
    state.record({"op": "netns", "name": "tb-unit-a"})
    with open(state.journal_path, "a") as out:
        out.write('{"op": "netns", "na')  # killed mid-write
    assert state.read().namespaces == ["tb-unit-a"]


def test_finding_labs_by_name_or_alone(tmp_path: Path) -> None:
    with pytest.raises(LabError, match="no lab is up"):
        find_lab(tmp_path, None)
    for name in ("one", "two"):
        LabState(tmp_path, name).create()
    with pytest.raises(LabError, match=r"several labs are up \(one, two\); name one: "
                                       r"Lab.attach\(NAME\)"):
        find_lab(tmp_path, None)
    with pytest.raises(LabError, match="no lab named 'three'.*one, two"):
        find_lab(tmp_path, "three")
    assert find_lab(tmp_path, "two").lab == "two"


@pytest.mark.parametrize("verb, options, how", [
    ("cli", {}, "testbed cli NAME"), ("down", {}, "testbed down NAME"),
    ("inspect", {"lab": None}, "--lab NAME"), ("exec", {"lab": None}, "--lab NAME")])
def test_several_labs_up_the_verb_says_how_to_name_one(tmp_path: Path, verb: str,
                                                       options: dict[str, object],
                                                       how: str) -> None:
    # `testbed cli` and `down` take the lab as an argument, other verbs as --lab
    import argparse

    from testbed.cli.common import find

    for name in ("one", "two"):
        LabState(tmp_path, name).create()
    args = argparse.Namespace(state_dir=tmp_path, command=verb, **options)
    with pytest.raises(LabError) as caught:
        find(args)
    assert str(caught.value).endswith(f"(one, two); name one: {how}")


def test_lock_refuses_a_concurrent_command(tmp_path: Path) -> None:
    state = LabState(tmp_path, "unit")
    with state.locked(), pytest.raises(LabError, match="busy"), LabState(tmp_path, "unit").locked():
        pass
