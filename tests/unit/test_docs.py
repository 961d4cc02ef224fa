"""Docs that match the code: every topology field is documented, --help teaches."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from testbed.topology.model import (
    Addressing,
    LinkSpec,
    LoginCapacity,
    NodeSpec,
    OverlaySettings,
    RegistrarSettings,
    SipUaSettings,
    SupernodeCapacity,
    SupernodeOverride,
    SwitchSettings,
    TopLink,
    TopologyFile,
)
from tests.conftest import REPO, run_cli


def test_every_topology_field_is_documented() -> None:
    text = (REPO / "docs" / "topology.md").read_text()
    documented = set(re.findall(r"`([a-z_]+)`", text))
    for cls in (TopologyFile, NodeSpec, LinkSpec, TopLink, Addressing, OverlaySettings,
                LoginCapacity, SupernodeCapacity, SupernodeOverride, SwitchSettings,
                RegistrarSettings, SipUaSettings):
        for field in dataclasses.fields(cls):
            assert field.name in documented, f"{cls.__name__}.{field.name} is not in docs"


def test_every_scenario_key_and_action_is_documented() -> None:
    from testbed.scenario.actions import default_actions
    from testbed.scenario.model import Distribution, ScenarioFile, Selector, StepSpec

    text = (REPO / "docs" / "scenarios.md").read_text()
    documented = set(re.findall(r"`([a-z_]+)`", text))
    for cls in (ScenarioFile, StepSpec, Selector, Distribution):
        for field in dataclasses.fields(cls):
            assert field.name in documented, f"{cls.__name__}.{field.name} is not in docs"
    for action in default_actions().actions:
        assert f"| `{action}`" in text or f"`{action}` /" in text or f"/ `{action}`" in text, \
            f"action {action} has no row in docs/scenarios.md"
    assert "docs/scenarios.md" in run_cli("run", "--help").stdout
    assert "docs/scenarios.md" in (REPO / "README.md").read_text()


def test_every_peer_metric_is_documented() -> None:
    from testbed.peer.metrics import PeerMetrics

    text = (REPO / "docs" / "protocol.md").read_text()
    names = {metric.name for metric in PeerMetrics("x").registry.collect()}
    assert len(names) >= 15
    for name in names:  # counters are collected without their _total suffix
        assert f"`{name}`" in text or f"`{name}_total`" in text, f"{name} is not documented"


def test_readme_names_the_two_commands_and_ci_runs_the_test_one() -> None:
    readme = (REPO / "README.md").read_text()
    block = readme.split("## The two commands", 1)[1].split("```sh", 1)[1].split("```", 1)[0]
    commands = [line.split("#")[0].strip() for line in block.strip().splitlines()]
    # exactly two, runnable in a root shell without sudo (a minimal Debian has none)
    assert commands == ["bash scripts/demo.sh", "bash scripts/test.sh"]
    assert "put `sudo` in front of each" in readme
    intro = readme.split("## The two commands", 1)[1].split("## ", 1)[0]
    assert "as root" in intro and "sudo bash scripts/demo.sh" in intro  # both forms
    assert "sudo bash scripts/" not in readme.replace(
        "(`sudo bash scripts/demo.sh`)", ""), "a root shell has no sudo: say 'as root'"
    assert "scripts/test.sh" in (REPO / ".ci" / "run").read_text()
    assert "benchmarks/bench_build.py" in readme
    assert Path(REPO / "benchmarks" / "bench_build.py").is_file()


def test_help_lists_every_command_with_an_example() -> None:
    result = run_cli("--help")
    assert result.returncode == 0
    for command in ("validate", "schema", "up", "down", "inspect", "exec", "graph", "demo",
                    "run", "compare", "reboot", "results", "inventory", "capture", "check"):
        assert re.search(rf"^\s+{command}\s", result.stdout, re.M), command
    assert "typical session" in result.stdout


def test_no_command_prints_help_and_fails() -> None:
    result = run_cli()
    assert result.returncode == 2
    assert "usage: testbed" in result.stdout


def test_architecture_names_every_package_and_the_two_paths() -> None:
    """docs/architecture.md is the newcomer's map: a package missing there is one they
    cannot place."""
    text = (REPO / "docs" / "architecture.md").read_text()
    packages = sorted(p.parent.name for p in (REPO / "testbed").glob("*/__init__.py"))
    missing = [p for p in packages if f"| `{p}/` |" not in text]
    assert missing == []
    for heading in ("## From `testbed up` to the kernel", "## From a scenario step to the lab"):
        assert heading in text
    for path in re.findall(r"`((?:[a-z_]+/)+[a-z_]+\.py)`", text):  # files it names exist
        assert (REPO / "testbed" / path).is_file() or any(
            (REPO / "testbed").glob(f"*/{path}")), path
