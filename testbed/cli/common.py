"""Argument helpers shared by commands."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from testbed.errors import TestbedError

if TYPE_CHECKING:
    from testbed.lab.state import LabState
    from testbed.topology.model import Topology


def add_topology_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("topology", metavar="TOPOLOGY",
                        help="topology YAML file, e.g. topologies/skype-2007.yaml")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="NAME=VALUE",
                        help="override a topology parameter (repeatable), e.g. --set homes=300")


def add_lab_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--lab", metavar="NAME",
                        help="which lab (default: the only lab that is up)")


def parse_overrides(items: list[str]) -> dict[str, str]:
    """--set NAME=VALUE arguments as a mapping."""
    overrides = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise TestbedError(f"--set expects NAME=VALUE, got {item!r}")
        overrides[name.strip()] = value
    return overrides


def load(args: argparse.Namespace) -> Topology:
    from testbed.topology.loader import load_topology

    return load_topology(args.topology, parse_overrides(args.overrides))


def find(args: argparse.Namespace, name: str | None = None) -> LabState:
    from testbed.lab.state import find_lab, state_root

    return find_lab(state_root(args.state_dir), name or getattr(args, "lab", None))
