"""Playbooks, the lab VM and the generated inventory, checked without a lab or root.

Every playbook passes `ansible-playbook --syntax-check` and ansible-lint; the Vagrantfile
passes `vagrant validate`; an inventory built from a lab summary is one that Ansible reads
back with the groups and host vars playbooks rely on; bad input fails with a message a
user can act on.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from testbed.errors import LabError
from testbed.inventory import build_inventory, group_name, load_summary, write_inventory
from testbed.lab.state import LabState
from tests.conftest import REPO, run_cli

VENV_BIN = Path(sys.executable).parent
PLAYBOOKS = sorted((REPO / "playbooks").glob("*.yml"))
TEST_PLAYBOOKS = sorted((REPO / "tests" / "integration" / "playbooks").glob("*.yml"))
ANSIBLE_CFG = REPO / "playbooks" / "ansible.cfg"


def _node(kind: str, namespace: str | None, address: str | None, group: str | None = None,
          labels: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"kind": kind, "group": group, "labels": labels or {}, "namespace": namespace,
            "realm": "public", "nat_type": None,
            "interfaces": [{"name": "eth0", "address": address, "peer": "core",
                            "rate_out": None}] if address else [],
            "routes": [], "mgmt_address": "100.127.0.3/16" if namespace else None,
            "uplink": "core", "state_dir": f"/run/testbed/demo/nodes/{kind}"}


SUMMARY: dict[str, Any] = {
    "lab": "demo",
    "state_dir": "/run/testbed/demo",
    "nodes": {
        "core": _node("router", "tb-demo-core", "198.18.0.1/30"),
        "lan": _node("switch", None, None),
        "home1": _node("peer", "tb-demo-home1", "192.168.1.2/24", group="homes",
                       labels={"os": "windows", "site": "home-lan"}),
        "sn1": _node("peer", "tb-demo-sn1", "198.18.0.6/30",
                     labels={"os": "windows", "sn_capable": True}),
        "corp-pc": _node("host", "tb-demo-corp-pc", "10.0.0.2/24", group="corp",
                         labels={"os": "linux"}),
    },
}


def _env(config: bool = True) -> dict[str, str]:
    """Ansible tools from this venv, without colour, with the project's ansible.cfg (as
    when run from playbooks/) unless `config` is false."""
    env = dict(os.environ)
    env.update(PATH=f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}", ANSIBLE_NOCOLOR="1",
               NO_COLOR="1")
    env.pop("ANSIBLE_CONFIG", None)
    if config:
        env["ANSIBLE_CONFIG"] = str(ANSIBLE_CFG)
    return env


def _run(argv: list[str], timeout: float = 60, **kwargs: Any
         ) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kwargs)


@pytest.fixture
def inventory_file(tmp_path: Path) -> Path:
    """The inventory `testbed up` would write for SUMMARY, as a file."""
    state = LabState(tmp_path, "demo")
    state.dir.mkdir()
    state.write_summary(SUMMARY)
    return write_inventory(state)


# --- the inventory ----------------------------------------------------------------------

def test_every_node_with_a_namespace_is_a_host_with_its_vars() -> None:
    hosts = build_inventory(SUMMARY)["all"]["hosts"]
    assert sorted(hosts) == ["core", "corp-pc", "home1", "sn1"]  # the switch has no netns
    home = hosts["home1"]
    assert home["ansible_connection"] == "testbed_netns"
    assert home["testbed_namespace"] == "tb-demo-home1"
    assert home["testbed_lab"] == "demo"
    assert home["testbed_kind"] == "peer"
    assert home["testbed_group"] == "homes"
    assert home["testbed_labels"] == {"os": "windows", "site": "home-lan"}
    assert home["testbed_address"] == "192.168.1.2"  # no prefix
    assert home["testbed_mgmt_address"] == "100.127.0.3"
    assert home["testbed_state_dir"] == "/run/testbed/demo/nodes/peer"


def test_hosts_are_grouped_by_kind_group_and_label_with_ansible_valid_names() -> None:
    children = build_inventory(SUMMARY)["all"]["children"]
    members = {group: sorted(body["hosts"]) for group, body in children.items()}
    assert members["kind_peer"] == ["home1", "sn1"]
    assert members["kind_router"] == ["core"]
    assert "kind_switch" not in members
    assert members["group_homes"] == ["home1"]
    assert members["group_corp"] == ["corp-pc"]
    assert members["label_os_windows"] == ["home1", "sn1"]
    assert members["label_os_linux"] == ["corp-pc"]
    assert members["label_site_home_lan"] == ["home1"]  # "home-lan" sanitised
    assert members["label_sn_capable_true"] == ["sn1"]  # booleans as true/false
    assert members["lab_demo"] == ["core", "corp-pc", "home1", "sn1"]
    assert group_name("label", "a.b", "x y") == "label_a_b_x_y"


@pytest.mark.parametrize(("summary", "message"), [
    ([], "must be a JSON object"),
    ({"nodes": {}}, "no lab name"),
    ({"lab": "demo"}, "no 'nodes' mapping"),
    ({"lab": "demo", "nodes": {"pc": {"kind": "host"}}}, "node 'pc'"),
])
def test_a_malformed_summary_is_a_lab_error(summary: Any, message: str) -> None:
    with pytest.raises(LabError, match=message):
        build_inventory(summary)


def test_a_missing_or_malformed_lab_json_is_a_lab_error(tmp_path: Path) -> None:
    state = LabState(tmp_path, "demo")
    with pytest.raises(LabError, match="has no summary yet"):
        load_summary(state)
    state.dir.mkdir()
    state.summary_path.write_text('{"lab": "demo",\n "nodes": ')
    with pytest.raises(LabError, match=r"lab\.json:2: not valid JSON.*testbed down demo"):
        load_summary(state)


def test_ansible_reads_the_written_inventory_back(inventory_file: Path) -> None:
    assert inventory_file.name == "inventory.yml"
    result = _run([str(VENV_BIN / "ansible-inventory"), "-i", str(inventory_file), "--list"],
                  env=_env())
    assert result.returncode == 0, result.stderr
    listed = json.loads(result.stdout)
    assert sorted(listed["label_os_windows"]["hosts"]) == ["home1", "sn1"]
    home = listed["_meta"]["hostvars"]["home1"]
    assert home["testbed_address"] == "192.168.1.2"
    assert home["ansible_connection"] == "testbed_netns"


def test_the_json_format_is_the_same_inventory(tmp_path: Path) -> None:
    state = LabState(tmp_path, "demo")
    state.dir.mkdir()
    state.write_summary(SUMMARY)
    state.journal_path.touch()  # a lab that is "up" as far as `find` is concerned
    as_json = run_cli("inventory", "--format", "json", state_dir=tmp_path)
    as_yaml = run_cli("inventory", "--lab", "demo", state_dir=tmp_path)
    assert as_json.returncode == 0 and as_yaml.returncode == 0, as_json.stderr
    assert json.loads(as_json.stdout) == yaml.safe_load(as_yaml.stdout)
    assert json.loads(as_json.stdout) == build_inventory(copy.deepcopy(SUMMARY))
    assert "ANSIBLE_CONNECTION_PLUGINS=" in as_json.stderr


def test_inventory_command_errors_say_what_to_do(tmp_path: Path) -> None:
    result = run_cli("inventory", state_dir=tmp_path)
    assert result.returncode == 1
    assert "no lab is up" in result.stderr
    state = LabState(tmp_path, "demo")
    state.dir.mkdir()
    state.journal_path.touch()
    state.summary_path.write_text("{not json")
    result = run_cli("inventory", "--lab", "demo", state_dir=tmp_path)
    assert result.returncode == 1
    assert "lab.json:1: not valid JSON" in result.stderr
    assert "Traceback" not in result.stderr


def test_inventory_help_teaches_with_an_example() -> None:
    result = run_cli("inventory", "--help")
    assert result.returncode == 0
    assert "ansible-playbook -i" in result.stdout
    assert "label_os_windows" in result.stdout


# --- playbooks --------------------------------------------------------------------------

@pytest.mark.parametrize("playbook", PLAYBOOKS + TEST_PLAYBOOKS, ids=lambda p: p.name)
def test_playbook_passes_syntax_check(playbook: Path, inventory_file: Path) -> None:
    result = _run([str(VENV_BIN / "ansible-playbook"), "--syntax-check", "-i",
                   str(inventory_file), str(playbook)], env=_env())
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_playbook_passes_ansible_lint() -> None:
    """One run for all (each start costs seconds); findings name file:line."""
    files = [str(p.relative_to(REPO)) for p in PLAYBOOKS + TEST_PLAYBOOKS]
    result = _run([str(VENV_BIN / "ansible-lint"), "--offline", "--nocolor", "--profile",
                   "production", *files], cwd=REPO,
                  env=_env(config=False),  # lint's own syntax check runs without -i
                  timeout=300)  # ~20 s alone; minutes on a loaded machine
    assert result.returncode == 0, f"ansible-lint findings:\n{result.stdout}{result.stderr}"


def test_the_connection_plugin_is_found_through_playbooks_ansible_cfg() -> None:
    result = _run([str(VENV_BIN / "ansible-doc"), "-t", "connection", "testbed_netns"],
                  env=_env())
    assert result.returncode == 0, result.stderr
    assert "ip netns exec" in result.stdout


def _patch_tuesday(inventory: Path | str) -> subprocess.CompletedProcess[str]:
    return _run([str(VENV_BIN / "ansible-playbook"), "-i", str(inventory),
                 str(REPO / "playbooks" / "patch-tuesday.yml")], env=_env())


def test_patch_tuesday_refuses_a_missing_or_malformed_inventory(tmp_path: Path) -> None:
    missing = _patch_tuesday(tmp_path / "missing.yml")
    assert missing.returncode != 0
    assert "Unable to parse" in missing.stdout + missing.stderr
    malformed = tmp_path / "malformed.yml"
    malformed.write_text("all: [hosts\n")
    result = _patch_tuesday(malformed)
    assert result.returncode != 0
    assert "No inventory was parsed" in result.stdout + result.stderr


def test_patch_tuesday_refuses_an_inventory_without_testbed_hosts(tmp_path: Path) -> None:
    other = tmp_path / "other.yml"
    other.write_text("all:\n  hosts:\n    webserver: {}\n")
    result = _patch_tuesday(other)
    assert result.returncode != 0
    assert "sudo testbed inventory -o lab.yml" in result.stdout


# --- the lab VM -------------------------------------------------------------------------

@pytest.mark.skipif(shutil.which("vagrant") is None,
                    reason="vagrant is not installed (playbooks/lab.yml installs Debian's)")
def test_vagrantfile_validates(tmp_path: Path) -> None:
    env = dict(os.environ, VAGRANT_HOME=str(tmp_path / "home"),
               VAGRANT_DOTFILE_PATH=str(tmp_path / "dot"), VAGRANT_CHECKPOINT_DISABLE="1",
               VAGRANT_CWD=str(REPO))
    # --ignore-provider: CI has neither VirtualBox nor the libvirt plugin, and plain
    # `validate` refuses to run without a usable provider; everything else is checked.
    result = _run(["vagrant", "validate", "--ignore-provider"], env=env, cwd=REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "validated successfully" in result.stdout
