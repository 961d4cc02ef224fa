"""Shared fixtures: real labs for integration tests, skipped with a reason without root."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from testbed.lab.lab import Lab
from testbed.progress import Progress

IS_ROOT = os.geteuid() == 0
REPO = Path(__file__).resolve().parents[1]


def pytest_configure(config: pytest.Config) -> None:
    """Tests that interrupt runs and captures need SIGINT to act. A suite started in the
    background by a non-interactive shell (`nohup ... &`, some CI runners) inherits SIGINT
    ignored, and every child would too: give it back its default, which exec passes on."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if IS_ROOT:
        return
    skip = pytest.mark.skip(reason="needs root: builds real network namespaces, links and "
                                   "processes (run the suite with sudo)")
    for item in items:
        if "root" in item.keywords:
            item.add_marker(skip)


class RunningLab(Lab):
    """A lab built for a test (through Lab.up, like every lab): plus helpers to run
    commands in its nodes and look up addresses."""

    def __init__(self, lab: Lab, topology_file: Path) -> None:
        super().__init__(lab.state, lab.backend, lab.topology, lab.plan)
        self.topology_file = topology_file

    def ns(self, node: str) -> str:
        namespace = self.plan.nodes[node].namespace
        assert namespace, f"{node} has no namespace"
        return namespace

    def addr(self, node: str) -> str:
        address = self.plan.nodes[node].primary_address()
        assert address, f"{node} has no address"
        return address

    def uplink_addr(self, node: str) -> str:
        """The address of the node's uplink interface (a NAT's public address)."""
        planned = self.plan.nodes[node]
        wan = [i for i in planned.interfaces if i.name == planned.uplink_interface]
        assert wan and wan[0].address, f"{node} has no uplink address"
        return wan[0].address.split("/")[0]

    def exec(self, node: str, *argv: str, timeout: float | None = 30,
             check: bool = False) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["ip", "netns", "exec", self.ns(node), *argv],
                              capture_output=True, text=True, timeout=timeout, check=check)

    def popen(self, node: str, *argv: str, **kwargs: object) -> subprocess.Popen[str]:
        return subprocess.Popen(["ip", "netns", "exec", self.ns(node), *argv],  # type: ignore[call-overload]
                                text=True, **kwargs)

    def python(self, node: str, code: str, timeout: float = 30
               ) -> subprocess.CompletedProcess[str]:
        """Run a Python snippet inside the node (same interpreter as the tests)."""
        return self.exec(node, sys.executable, "-c", textwrap.dedent(code), timeout=timeout)

    def mgmt_get(self, node: str, path: str, timeout: float = 10) -> str:
        """GET http://<node's management address>:9100<path>, from the lab's management
        namespace (the only place that reaches it): metrics and the peer control API."""
        address = (self.plan.nodes[node].mgmt_address or "").split("/")[0]
        result = subprocess.run(
            ["ip", "netns", "exec", self.plan.mgmt_namespace, "curl", "-s", "-m",
             str(timeout), f"http://{address}:9100{path}"],
            capture_output=True, text=True, timeout=timeout + 5)
        return result.stdout

    def down(self, progress: Progress | None = None) -> list[str]:
        return super().down(progress) if self.state.exists() else []


def unique_lab_name(prefix: str = "t") -> str:
    return f"{prefix}{secrets.token_hex(3)}"


@pytest.fixture
def state_root(tmp_path: Path) -> Path:
    root = tmp_path / "state"
    root.mkdir()
    return root


@pytest.fixture
def make_lab(tmp_path: Path, state_root: Path) -> Iterator[Callable[..., RunningLab]]:
    """Build a lab from YAML text; `name:` is filled in with a unique lab name.

    Usage: lab = make_lab('''nodes: ...''')  - the lab is removed after the test.
    """
    labs: list[RunningLab] = []

    def factory(yaml_text: str, name: str | None = None) -> RunningLab:
        name = name or unique_lab_name()
        text = f"name: {name}\n" + textwrap.dedent(yaml_text)
        path = tmp_path / f"{name}.yaml"
        path.write_text(text)
        lab = RunningLab(Lab.up(path, state_dir=state_root), path)
        labs.append(lab)
        return lab

    yield factory
    for lab in labs:
        lab.down()


def run_cli(*args: str, state_dir: Path | None = None, timeout: float = 300,
            check: bool = False, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    """Run the real `testbed` command line as a user would."""
    env = dict(os.environ)
    if state_dir is not None:
        env["TESTBED_STATE_DIR"] = str(state_dir)
    return subprocess.run([sys.executable, "-m", "testbed", *args], capture_output=True,
                          text=True, timeout=timeout, env=env, cwd=cwd, check=check)
