"""Argument helpers shared by commands."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from testbed.errors import TestbedError

if TYPE_CHECKING:
    from testbed.lab.state import LabState
    from testbed.topology.model import Topology


def add_topology_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("topology", metavar="TOPOLOGY", nargs="?",
                        help="topology YAML file, e.g. topologies/skype-2007.yaml")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="NAME=VALUE",
                        help="override a topology parameter (repeatable), e.g. --set homes=300")
    parser.add_argument("--name", help="lab name (default: the file's name:, or from --topo), "
                                       "e.g. to run two labs of one topology side by side")
    mininet = parser.add_argument_group("Mininet topologies (as `mn`; docs/mininet.md)")
    mininet.add_argument("--topo", metavar="NAME[,ARG...]",
                         help="a Mininet topology instead of TOPOLOGY: linear,4, "
                              "tree,depth=2,fanout=3, single,3, minimal, reversed,3, or one "
                              "from --custom")
    mininet.add_argument("--custom", metavar="FILE", action="append", default=[],
                         help="Python file with a `topos` dict, as `mn --custom`")


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

    if args.topo or args.custom:
        if args.topology or args.overrides or not args.topo:
            raise TestbedError("give either a TOPOLOGY file (with --set) or a Mininet "
                               "--topo NAME[,ARG...] (with --custom FILE)")
        from testbed.mininet.topo import load as load_mininet

        return load_mininet(args.topo, args.custom, args.name)
    if not args.topology:
        raise TestbedError("give a TOPOLOGY file, or a Mininet --topo NAME[,ARG...]")
    topology = load_topology(args.topology, parse_overrides(args.overrides))
    if args.name:
        import dataclasses

        from testbed.topology.loader import LAB_NAME

        if not LAB_NAME.match(args.name):
            raise TestbedError(f"--name {args.name!r}: 1-12 chars of a-z, 0-9 and '-', "
                               "starting with a letter")
        topology = dataclasses.replace(topology, name=args.name)
    return topology


def find(args: argparse.Namespace, name: str | None = None) -> LabState:
    from testbed.lab.state import find_lab, state_root

    how = ("--lab NAME" if hasattr(args, "lab") else
           f"testbed {getattr(args, 'command', None) or '<verb>'} NAME")
    return find_lab(state_root(args.state_dir), name or getattr(args, "lab", None), how)
