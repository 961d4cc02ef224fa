"""`testbed inventory`: an Ansible inventory of a running lab (also written at `up`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from testbed.cli.common import add_lab_arg, find

EPILOG = """\
groups: kind_<kind> (kind_peer, kind_router, ...), group_<group>, label_<key>_<value>
(label_os_windows, label_sn_capable_true, ...) and lab_<lab>. Host vars: testbed_address,
testbed_mgmt_address, testbed_kind, testbed_group, testbed_labels, testbed_namespace,
testbed_state_dir, testbed_lab. `up` already wrote the same file to
/run/testbed/<lab>/inventory.yml.

Hosts are reached through the testbed_netns connection plugin (ip netns exec, no SSH),
which ships with the project: playbooks/ansible.cfg points at it, or set
ANSIBLE_CONNECTION_PLUGINS (this command prints the value on stderr).

example:
  sudo testbed inventory -o lab.yml
  cd playbooks && sudo ansible-playbook -i ../lab.yml patch-tuesday.yml -e serial_batch=2
  cd playbooks && sudo ansible -i ../lab.yml label_os_windows -a 'ip -br addr'
"""


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "inventory", help="Ansible inventory of a running lab (root)",
        description="Print (or write with -o) an Ansible inventory of a running lab: every "
                    "node with a namespace as a host, grouped by kind, group and label.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_lab_arg(p)
    p.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of stdout")
    p.add_argument("--format", choices=("yaml", "json"), default="yaml",
                   help="yaml (default) or json; Ansible reads either with -i")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from testbed.inventory import build_inventory, connection_plugin_dir, load_summary, render

    state = find(args)
    inventory = build_inventory(load_summary(state))
    text = render(inventory, args.format)
    if args.output:
        Path(args.output).write_text(text)
        hosts = len(inventory["all"]["hosts"])
        print(f"wrote {args.output}: {hosts} hosts of lab {state.lab!r}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    print(f"hint: outside playbooks/ (whose ansible.cfg finds the connection plugin), "
          f"export ANSIBLE_CONNECTION_PLUGINS={connection_plugin_dir()}", file=sys.stderr)
    return 0
