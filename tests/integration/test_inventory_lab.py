"""Ansible against a running lab: `up` writes the inventory, and a playbook run through the
project's testbed_netns connection plugin changes exactly the hosts it selected."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO

pytestmark = pytest.mark.root

VENV_BIN = Path(sys.executable).parent
TOUCH = REPO / "tests" / "integration" / "playbooks" / "touch.yml"

TOPOLOGY = """
nodes:
  core: {kind: router}
  win1: {kind: host, labels: {os: windows}, uplink: {to: core}}
  win2: {kind: host, labels: {os: windows}, uplink: {to: core}}
  tux: {kind: host, labels: {os: linux}, uplink: {to: core}}
"""


def _playbook(inventory: Path, playbook: Path, *extra: str
              ) -> subprocess.CompletedProcess[str]:
    """ansible-playbook as a user runs it from playbooks/ (whose ansible.cfg finds the
    connection plugin)."""
    env = dict(os.environ, PATH=f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
               ANSIBLE_CONFIG=str(REPO / "playbooks" / "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    return subprocess.run([str(VENV_BIN / "ansible-playbook"), "-i", str(inventory),
                           str(playbook), *extra],
                          capture_output=True, text=True, timeout=60, env=env)


def _recap(output: str, host: str) -> str:
    return next(line for line in output.splitlines() if line.startswith(f"{host} "))


def test_a_playbook_changes_the_selected_emulated_hosts_and_only_them(make_lab) -> None:
    lab = make_lab(TOPOLOGY)
    inventory = lab.state.dir / "inventory.yml"
    assert inventory.is_file(), "`up` did not write the inventory"
    data = yaml.safe_load(inventory.read_text())["all"]
    assert sorted(data["children"]["label_os_windows"]["hosts"]) == ["win1", "win2"]
    assert data["hosts"]["win1"]["testbed_address"] == lab.addr("win1")
    assert data["hosts"]["win1"]["testbed_namespace"] == lab.ns("win1")

    result = _playbook(inventory, TOUCH)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    for host in ("win1", "win2"):
        assert "changed=3" in _recap(result.stdout, host), output  # dir, file, alias

    aliases = []
    for host in ("win1", "win2"):
        touched = lab.state.node_dir(host) / "touched.txt"
        name, address, alias = touched.read_text().split()
        assert (name, address) == (host, lab.addr(host))
        loopback = lab.exec(host, "ip", "-o", "addr", "show", "dev", "lo", check=True).stdout
        assert f"{alias}/32" in loopback  # the change is inside the host's namespace
        aliases.append(alias)
    assert len(set(aliases)) == 2

    assert not (lab.state.node_dir("tux") / "touched.txt").exists()
    assert "192.0.2." not in lab.exec("tux", "ip", "-o", "addr", check=True).stdout
    machine = subprocess.run(["ip", "-o", "addr"], capture_output=True, text=True).stdout
    assert not any(f"{alias}/32" in machine for alias in aliases)  # nothing leaked out

    again = _playbook(inventory, TOUCH)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "changed=0" in _recap(again.stdout, "win1"), again.stdout


def test_a_host_whose_namespace_is_gone_is_unreachable_with_a_reason(tmp_path: Path) -> None:
    inventory = tmp_path / "inventory.yml"
    inventory.write_text(yaml.safe_dump({"all": {"hosts": {"ghost": {
        "ansible_connection": "testbed_netns", "testbed_namespace": "tb-nosuchlab-ghost",
        "testbed_state_dir": str(tmp_path), "testbed_address": "198.18.0.2",
        "testbed_lab": "nosuchlab", "testbed_labels": {"os": "windows"}}},
        "children": {"label_os_windows": {"hosts": {"ghost": {}}}}}}))
    result = _playbook(inventory, TOUCH)
    assert result.returncode != 0
    assert "UNREACHABLE" in result.stdout
    assert "network namespace tb-nosuchlab-ghost does not exist" in result.stdout
