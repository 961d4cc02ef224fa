"""An Ansible inventory of a running lab, generated from its `lab.json` (as containerlab does).

Every node with a network namespace becomes a host that Ansible reaches through the
project's `testbed_netns` connection plugin (no SSH daemon per emulated host), grouped
so that plays can select hosts the way topologies describe them:

  kind_<kind>            kind_peer, kind_router, kind_nat, ...
  group_<group>          the topology's `groups:` a node belongs to
  label_<key>_<value>    label_os_windows, label_sn_capable_true, ...
  lab_<lab>              every host of the lab (tells labs apart in a merged inventory)

Group names are sanitised to what Ansible accepts (letters, digits, `_`): `site: corp-lan`
becomes `label_site_corp_lan`. Pure apart from `load_summary` and `write_inventory`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from testbed.errors import LabError
from testbed.lab.state import LabState

CONNECTION = "testbed_netns"
INVENTORY_FILE = "inventory.yml"
# Emulated hosts share the machine's filesystem, so modules run with its Python (the one
# that has python3-apt), whatever Python runs ansible-playbook.
PYTHON = "/usr/bin/python3"


def connection_plugin_dir() -> Path:
    """Where the `testbed_netns` plugin lives: the value for ANSIBLE_CONNECTION_PLUGINS."""
    return Path(__file__).resolve().parent / "ansible" / "connection"


def group_name(*parts: object) -> str:
    """`label`, `site`, `corp-lan` -> `label_site_corp_lan`; booleans as true/false."""
    words = [str(p).lower() if isinstance(p, bool) else str(p) for p in parts]
    return re.sub(r"[^A-Za-z0-9_]", "_", "_".join(words))


def build_inventory(summary: Mapping[str, Any]) -> dict[str, Any]:
    """The YAML-inventory structure (`all.hosts`, `all.children`) for a lab summary.

    Raises LabError when the summary lacks what a host needs (a damaged lab.json): an
    inventory with silently missing hosts would let a play "succeed" on nothing.
    """
    lab, nodes = _checked(summary)
    hosts: dict[str, dict[str, Any]] = {}
    children: dict[str, set[str]] = {}
    for name, node in nodes.items():
        namespace = node.get("namespace")
        if not namespace:
            continue  # switches are bridges in the fabric namespace: nothing to log into
        hosts[name] = _host_vars(lab, name, node)
        groups = [group_name("lab", lab), group_name("kind", node.get("kind"))]
        if node.get("group"):
            groups.append(group_name("group", node["group"]))
        for key, value in sorted((node.get("labels") or {}).items()):
            groups.append(group_name("label", key, value))
        for group in groups:
            children.setdefault(group, set()).add(name)
    return {"all": {
        "hosts": hosts,
        "children": {group: {"hosts": {host: {} for host in sorted(members)}}
                     for group, members in sorted(children.items())},
    }}


def _checked(summary: Mapping[str, Any]) -> tuple[str, dict[str, dict[str, Any]]]:
    if not isinstance(summary, Mapping):
        raise LabError(f"lab summary must be a JSON object, got {type(summary).__name__}")
    lab = summary.get("lab")
    nodes = summary.get("nodes")
    if not isinstance(lab, str) or not lab:
        raise LabError("lab summary has no lab name (key 'lab'); is this a lab.json?")
    if not isinstance(nodes, Mapping):
        raise LabError(f"lab {lab!r}: summary has no 'nodes' mapping; is this a lab.json?")
    for name, node in nodes.items():
        if not isinstance(node, Mapping) or "kind" not in node or "namespace" not in node:
            raise LabError(f"lab {lab!r}: node {name!r} in the summary has no kind or "
                           "namespace; the lab's state is damaged (`testbed down "
                           f"{lab}`, then bring it up again)")
    return lab, dict(nodes)


def _host_vars(lab: str, name: str, node: Mapping[str, Any]) -> dict[str, Any]:
    addresses = [i["address"].split("/")[0] for i in node.get("interfaces") or []
                 if i.get("address")]
    mgmt = node.get("mgmt_address")
    return {
        "ansible_connection": CONNECTION,
        "ansible_python_interpreter": PYTHON,
        "testbed_lab": lab,
        "testbed_namespace": node["namespace"],
        "testbed_kind": node["kind"],
        "testbed_group": node.get("group"),
        "testbed_labels": dict(node.get("labels") or {}),
        "testbed_realm": node.get("realm"),
        "testbed_address": addresses[0] if addresses else None,
        "testbed_addresses": addresses,
        "testbed_mgmt_address": mgmt.split("/")[0] if mgmt else None,
        "testbed_state_dir": node.get("state_dir"),
    }


def load_summary(state: LabState) -> dict[str, Any]:
    """The lab's lab.json, with a LabError a user can act on when it is missing or broken."""
    try:
        return state.summary()
    except json.JSONDecodeError as exc:
        raise LabError(f"{state.summary_path}:{exc.lineno}: not valid JSON ({exc.msg}); the "
                       f"lab's state is damaged: `testbed down {state.lab}`, then bring it "
                       "up again") from None


def render(inventory: Mapping[str, Any], fmt: str = "yaml") -> str:
    """The inventory as text Ansible reads back (its yaml plugin takes .yml and .json)."""
    if fmt == "json":
        return json.dumps(inventory, indent=1, sort_keys=True) + "\n"
    header = ("# Generated by `testbed inventory`: the running lab's hosts for Ansible.\n"
              "# Use: ansible-playbook -i THIS_FILE playbooks/patch-tuesday.yml\n")
    # libyaml's emitter: the pure-Python one takes ~1 s for a 1000-host lab, at every `up`
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    return header + yaml.dump(dict(inventory), Dumper=dumper, sort_keys=True,
                              default_flow_style=False)


def write_inventory(state: LabState) -> Path:
    """Write <lab state dir>/inventory.yml from the lab's summary; returns its path."""
    path = state.dir / INVENTORY_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(render(build_inventory(load_summary(state))))
    tmp.replace(path)
    return path
