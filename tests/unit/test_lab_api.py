"""The Lab front door without a kernel (the fake backend): building, finding, node access,
and what a scenario's steps ask of a backend through the lab's runtime and the engine."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from testbed import Lab, LabNode
from testbed.backends.fake import FakeBackend
from testbed.errors import LabError, StepError
from testbed.metrics.exporter import TestbedExporter
from testbed.scenario.actions import RunContext
from testbed.scenario.engine import Engine, StepLog
from testbed.scenario.loader import load_scenario

REPO = Path(__file__).resolve().parents[2]

TOPOLOGY = """\
name: api
params: {homes: 2}
nodes:
  core: {kind: router}
  home{n}-nat:
    count: ${homes}
    kind: nat
    uplink: {to: core, up: 1Mbit, down: 8Mbit}
  home{n}:
    count: ${homes}
    kind: host
    uplink: {to: "home{n}-nat"}
"""


@pytest.fixture
def topology_file(tmp_path: Path) -> Path:
    path = tmp_path / "api.yaml"
    path.write_text(TOPOLOGY)
    return path


def test_up_with_keyword_parameters_gives_nodes_by_name(tmp_path: Path,
                                                        topology_file: Path) -> None:
    backend = FakeBackend()
    with Lab.up(topology_file, homes=3, backend=backend, state_dir=tmp_path / "s") as lab:
        assert backend.calls[:2] == ["preflight", "build"]
        assert [n.name for n in lab.hosts] == ["home1", "home2", "home3"]
        node = lab["home1"]
        assert isinstance(node, LabNode) and node.kind == "host"
        assert node.namespace == "tb-api-home1"
        assert node.ip is not None and re.fullmatch(r"[\d.]+", node.ip)
        assert "home3-nat" in lab and "home4" not in lab
        with pytest.raises(LabError, match="no node 'nope' in lab 'api'"):
            lab["nope"]
        node.cmd("ping -c1", lab["core"].ips[0])
        assert backend.commands[-1] == ("tb-api-home1",
                                        ("sh", "-c", f"ping -c1 {lab['core'].ips[0]}"))
    assert backend.calls[-1] == "teardown"
    assert not (tmp_path / "s" / "api").exists()


def test_attach_finds_a_lab_and_rebuilds_the_same_plan(tmp_path: Path,
                                                       topology_file: Path) -> None:
    built = Lab.up(topology_file, {"homes": 2}, backend=FakeBackend(), state_dir=tmp_path)
    attached = Lab.attach(state_dir=tmp_path, backend=FakeBackend())
    assert attached.name == "api"
    assert attached.plan == built.plan
    attached.down()
    with pytest.raises(LabError, match="no lab is up"):
        Lab.attach(state_dir=tmp_path)


def test_a_loaded_topology_takes_no_parameters(tmp_path: Path, topology_file: Path) -> None:
    from testbed import load_topology

    with pytest.raises(LabError, match="pass its path instead"):
        Lab.up(load_topology(topology_file), homes=3, backend=FakeBackend(),
               state_dir=tmp_path)


def test_link_down_acts_on_both_ends_of_that_link(tmp_path: Path, topology_file: Path
                                                  ) -> None:
    backend = FakeBackend()
    with Lab.up(topology_file, backend=backend, state_dir=tmp_path) as lab:
        lab.link("home1", "home1-nat", up=False)
        changed = [c for c in backend.calls if c.startswith("set_link_end")]
        assert len(changed) == 2 and all(c.endswith(" down") for c in changed)
        with pytest.raises(LabError, match="no link between home1 and home2"):
            lab.link("home1", "home2", up=True)


def test_scenario_steps_reach_the_backend_through_the_engine(tmp_path: Path,
                                                             topology_file: Path) -> None:
    """A restart wave and a link change, played by the real engine on the real runtime:
    what the backend is asked to do is what a reboot and a reshaping are."""
    scenario = tmp_path / "s.yaml"
    scenario.write_text("""\
name: s
seed: 1
steps:
  - {action: restart_wave, at: 0s, select: {names: [home1]}, window: 0s,
     down_time: {kind: fixed, value: 100ms}}
  - {action: set_link, at: 300ms, select: {names: [home2]}, link: {up: 256kbit, loss: 1%}}
""")
    backend = FakeBackend()
    with Lab.up(topology_file, backend=backend, state_dir=tmp_path / "st") as lab:
        events = load_scenario(scenario, lab.topology).events
        context = RunContext(lab.runtime, TestbedExporter(lab.plan))
        assert Engine(events, context, StepLog(tmp_path / "steps.jsonl")).run(0.6)
        calls = backend.calls
        down = calls.index("set_links home1 down")
        assert calls.index("set_links home1 up") > down
        assert calls.index("start_services home1") > calls.index("set_links home1 up")
        shaped = [c for c in calls if c.startswith("shape")]
        assert any("rate=256000 loss=0.01" in c for c in shaped), shaped


def test_only_the_lab_builds_labs() -> None:
    """Building a lab is written once: bring_up is called from testbed/lab/lab.py only."""
    callers = [path.relative_to(REPO).as_posix()
               for folder in ("testbed", "tests", "benchmarks")
               for path in (REPO / folder).rglob("*.py")
               if "bring_up(" in path.read_text() and path.name != "test_lab_api.py"]
    assert sorted(callers) == ["testbed/lab/lab.py", "testbed/lab/lifecycle.py",
                               "tests/unit/test_lifecycle_logic.py"]


def test_set_link_takes_a_scenarios_keys_and_units(tmp_path: Path, topology_file: Path
                                                   ) -> None:
    backend = FakeBackend()
    with Lab.up(topology_file, backend=backend, state_dir=tmp_path) as lab:
        lab.set_link("home1", up="256kbit")
        assert any(c.startswith("shape") and "rate=256000" in c for c in backend.calls)
        with pytest.raises(LabError, match="set_link home1: unknown key 'speed'"):
            lab.set_link("home1", speed="1Mbit")


def test_reboot_takes_nodes_down_then_up_and_says_so(tmp_path: Path, topology_file: Path
                                                     ) -> None:
    """What `testbed reboot` prints comes from Lab.reboot, which a scenario's reboot and
    the Python API share."""
    backend, said = FakeBackend(), []
    with Lab.up(topology_file, backend=backend, state_dir=tmp_path) as lab:
        with pytest.raises(StepError, match="no node 'nope'"):
            lab.reboot("home1", "nope", down_time=0)
        assert not any(c.startswith("set_links") for c in backend.calls)  # nothing went down
        lab.reboot("home1", "home2", down_time=0, say=said.append)
        acted = [c for c in backend.calls if c.startswith(("set_links", "start_services"))]
        assert acted == ["set_links home1 down", "set_links home2 down",
                         "set_links home1 up", "start_services home1",
                         "set_links home2 up", "start_services home2"]
    assert said == ["home1: down (0 processes ended, links down)",
                    "home2: down (0 processes ended, links down)",
                    "home1: up again (1 services started)",
                    "home2: up again (1 services started)"]


def test_the_package_exports_its_curated_api_lazily() -> None:
    """`from testbed import ...` offers exactly the documented names; importing the
    package alone loads none of the lab's machinery (so `testbed --help` stays fast)."""
    import subprocess
    import sys

    import testbed

    assert sorted(testbed.__all__) == ["Lab", "LabNode", "TestbedError", "Topology",
                                       "__version__", "load_topology"]
    assert set(testbed.__all__) <= set(dir(testbed))
    assert all(getattr(testbed, name) is not None for name in testbed.__all__)
    with pytest.raises(AttributeError, match="no attribute 'NetnsBackend'"):
        testbed.NetnsBackend  # noqa: B018
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, testbed; print(sorted(sys.modules))"],
        capture_output=True, text=True, check=True).stdout
    assert "testbed.lab" not in loaded and "testbed.backends" not in loaded
