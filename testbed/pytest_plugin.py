"""pytest plugin (installed with the package, entry point `pytest11`): real labs in tests.

Fixtures:
  lab           the lab of the test's `@pytest.mark.topology("file.yaml", set={...})`
                (or of a Mininet topology: `topology(topo="tree,depth=2", custom=[...])`),
                built before the test and always removed after it (kept up on failure
                with --testbed-keep-lab-on-failure); captures declared in the topology run
                for its whole life;
  capture       a factory: capture("NODE[:IFACE]", "bpf filter") -> a handle whose pcap
                and packet count are there after stop();
  run_scenario  run_scenario(TOPOLOGY, SCENARIO, set={...}) plays a scenario like
                `testbed run` and returns its results with query helpers;
  testbed_artifacts  the test's own directory under --testbed-results (default
                ./testbed-results): pcaps, indexes, runs. Kept only when the test failed.

Labs need root: without it these fixtures skip the test, saying why. Heavy imports
(the backend, scapy) happen inside the fixtures, so loading the plugin costs nothing.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from testbed.testing import CaptureHandle, LabFixture, ScenarioResults
    from testbed.topology.model import Topology

REPORTS = pytest.StashKey[dict[str, pytest.TestReport]]()
KEPT = pytest.StashKey[list[str]]()
MARKER_HELP = ("topology(path, set=None, name=None): the topology of the `lab` fixture; "
               "path relative to the test file (or the working directory), set= topology "
               "parameters like --set, name= the lab name (default: a unique one). A "
               "Mininet topology instead of a path: topo=\"tree,depth=2\" (mn --topo), "
               "custom=\"mytopo.py\" or a list (mn --custom)")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("testbed", "outage-testbed labs (fixtures lab, capture, "
                                       "run_scenario)")
    group.addoption("--testbed-keep-lab-on-failure", action="store_true", default=False,
                    help="leave a failing test's lab up to look at it (testbed inspect "
                         "--lab NAME); remove it later with `testbed down NAME`")
    group.addoption("--testbed-results", metavar="DIR", default=None,
                    help="where each test's pcaps and run results go, one directory per "
                         "test (default ./testbed-results); kept only for failing tests")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", MARKER_HELP)
    config.stash[KEPT] = []


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]
                              ) -> Generator[None, Any, None]:
    """Remember each phase's report, so fixtures can tell at teardown if the test failed."""
    outcome: Any = yield
    report = outcome.get_result()
    item.stash.setdefault(REPORTS, {})[report.when] = report


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    kept = config.stash.get(KEPT, [])
    if kept:
        terminalreporter.section("testbed: kept for failing tests")
        for line in kept:
            terminalreporter.write_line(line)


def failed(item: pytest.Item) -> bool:
    """Did the test's setup or call fail (as seen from its fixtures' teardown)?"""
    return any(report.failed for report in item.stash.get(REPORTS, {}).values())


def results_root(config: pytest.Config) -> Path:
    option = config.getoption("--testbed-results")
    base = Path(option) if option else Path("testbed-results")
    return base if base.is_absolute() else config.invocation_params.dir / base


def require_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root: builds real network namespaces, links and processes (run "
                    "pytest with sudo)")


@pytest.fixture
def testbed_artifacts(request: pytest.FixtureRequest) -> Iterator[Path]:
    """This test's directory for pcaps and results; removed after a passing test."""
    base = results_root(request.config)
    directory = base / re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.nodeid).strip("_")
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    yield directory
    if failed(request.node):
        request.config.stash[KEPT].append(f"{request.node.nodeid}: {directory}")
        return
    shutil.rmtree(directory, ignore_errors=True)
    with contextlib.suppress(OSError):
        base.rmdir()  # only when no other test kept something there


def topology_of(item: pytest.Item) -> tuple[Callable[[], Topology], str | None]:
    """How to load the topology marker's topology (a file with --set overrides, or a
    Mininet --topo/--custom) and the lab name; a misuse fails the test with a message that
    says how to write it."""
    marker = item.get_closest_marker("topology")
    if marker is None:
        pytest.fail("the `lab` fixture needs a topology: decorate the test with "
                    "@pytest.mark.topology(\"topologies/NAME.yaml\", set={...})",
                    pytrace=False)
    unknown = sorted(set(marker.kwargs) - {"set", "name", "topo", "custom"})
    if unknown:
        pytest.fail(f"@pytest.mark.topology: unknown keyword {', '.join(unknown)}; it takes "
                    "set={name: value}, name=\"lab-name\", or for a Mininet topology "
                    "topo=\"NAME[,ARG...]\" and custom=\"file.py\"", pytrace=False)
    name = marker.kwargs.get("name")
    if name is not None and not isinstance(name, str):
        pytest.fail(f"@pytest.mark.topology: name= must be a string; got {name!r}",
                    pytrace=False)
    if "topo" in marker.kwargs or "custom" in marker.kwargs:
        return mininet_topology_of(marker, item), name
    if len(marker.args) != 1 or not isinstance(marker.args[0], (str, os.PathLike)):
        pytest.fail(f"@pytest.mark.topology takes one topology file path; got "
                    f"{marker.args!r}", pytrace=False)
    overrides = marker.kwargs.get("set") or {}
    if not isinstance(overrides, dict):
        pytest.fail(f"@pytest.mark.topology: set= must be a dict of topology parameters, "
                    f"e.g. set={{\"homes\": 4}}; got {overrides!r}", pytrace=False)
    path = find_file(marker.args[0], item)
    params = {str(k): _param(v) for k, v in overrides.items()}

    def load() -> Topology:
        from testbed.topology.loader import load_topology

        return load_topology(path, params)

    return load, name


def mininet_topology_of(marker: pytest.Mark, item: pytest.Item) -> Callable[[], Topology]:
    """topology(topo="tree,depth=2", custom="mytopo.py"): as `mn --custom --topo`."""
    spec, custom = marker.kwargs.get("topo"), marker.kwargs.get("custom") or []
    if marker.args or "set" in marker.kwargs or not isinstance(spec, str):
        pytest.fail("@pytest.mark.topology: a Mininet topology is topo=\"NAME[,ARG...]\" "
                    "(its arguments in it, as mn --topo) with custom=\"file.py\" if it is "
                    f"your own, and no path or set=; got {marker.args!r} {marker.kwargs!r}",
                    pytrace=False)
    files = [custom] if isinstance(custom, (str, os.PathLike)) else list(custom)
    paths = [str(find_file(f, item)) for f in files]

    def load() -> Topology:
        from testbed.mininet.topo import from_mininet

        return from_mininet(spec, paths, "mn")  # the fixture names the lab

    return load


def _param(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def find_file(name: str | os.PathLike[str], item: pytest.Item) -> Path:
    """A path as given, relative to the test file first, then the working directory."""
    path = Path(name)
    places = [path] if path.is_absolute() else [item.path.parent / path,
                                                 item.config.invocation_params.dir / path]
    for place in places:
        if place.is_file():
            return place
    pytest.fail(f"file {str(name)!r} not found (looked in: "
                f"{', '.join(str(p) for p in places)})", pytrace=False)


def unique_lab_name() -> str:
    return f"pt{secrets.token_hex(3)}"


@pytest.fixture
def lab(request: pytest.FixtureRequest, testbed_artifacts: Path) -> Iterator[LabFixture]:
    """The lab of @pytest.mark.topology, up for the test, always removed after it."""
    from testbed.errors import InputError

    load, name = topology_of(request.node)
    problem = ""
    try:
        topology = load()
    except InputError as exc:  # the topology file's or the Mininet topology's problems
        problem = str(exc)
    if problem:  # outside the except: no "during handling of the above exception"
        pytest.fail(problem, pytrace=False)
    require_root()
    from testbed.lab.lab import Lab
    from testbed.testing import LabFixture

    fixture = LabFixture(Lab.up(topology, name=name or unique_lab_name()), testbed_artifacts)
    try:
        fixture.start_declared()
        yield fixture
    finally:
        fixture.stop_captures()
        if request.config.getoption("--testbed-keep-lab-on-failure") \
                and failed(request.node):
            request.config.stash[KEPT].append(
                f"{request.node.nodeid}: lab {fixture.name} left up: sudo testbed inspect "
                f"--lab {fixture.name}; sudo testbed down {fixture.name}")
        else:
            fixture.down()


@pytest.fixture
def capture(lab: LabFixture) -> Iterator[Callable[..., CaptureHandle]]:
    """capture("NODE[:IFACE]", "bpf filter", snaplen=, max_packets=, max_seconds=, name=)
    starts tcpdump in the lab (default interface: the node's uplink) and returns a handle
    (pcap, stop(), then packets/dropped). Every capture stops at the end of the test."""
    yield lab.capture
    lab.stop_captures()


@pytest.fixture
def run_scenario(request: pytest.FixtureRequest, testbed_artifacts: Path
                 ) -> Callable[..., ScenarioResults]:
    """run_scenario(TOPOLOGY, SCENARIO, set={...}, duration=None, seed=None,
    report=False) plays the scenario on a fresh lab like `testbed run` (captures,
    expectations, Prometheus) and returns ScenarioResults (summary, verdicts, series,
    captures, assert_passed()). Results go under the test's artefacts directory."""
    runs: list[str] = []

    def run(topology: str | os.PathLike[str], scenario: str | os.PathLike[str], *,
            set: dict[str, Any] | None = None, duration: float | None = None,
            seed: int | None = None, report: bool = False) -> ScenarioResults:
        topology_path = find_file(topology, request.node)
        scenario_path = find_file(scenario, request.node)
        from testbed.errors import InputError
        from testbed.scenario.run import Run, RunOptions, prepare
        from testbed.testing import ScenarioResults

        run_id = f"{scenario_path.stem}-{len(runs) + 1}"
        options = RunOptions(topology=topology_path, scenario=scenario_path,
                             overrides={k: _param(v) for k, v in (set or {}).items()},
                             results=testbed_artifacts / "runs", run_id=run_id, seed=seed,
                             report=report, duration=duration, lab_name=unique_lab_name())
        problem = ""
        try:
            prepared = prepare(options)
        except InputError as exc:
            problem = str(exc)
        if problem:
            pytest.fail(problem, pytrace=False)
        require_root()
        runs.append(run_id)
        session = Run(options, prepared)
        session.execute()
        return ScenarioResults(session.run_dir, complete=session.complete)

    return run
