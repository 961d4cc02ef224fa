"""`testbed schema`: the JSON Schema of topology files, for editors."""

from __future__ import annotations

import argparse
import json
from typing import Any


def add_parser(sub: Any) -> None:
    p = sub.add_parser("schema", help="print the topology JSON Schema (for editors)",
                       description="Print the JSON Schema of topology files, generated from "
                                   "the model. E.g. for VS Code's YAML extension: "
                                   "testbed schema > topology.schema.json")
    p.add_argument("-o", "--output", help="write to this file instead of stdout")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from testbed.topology.schema import topology_schema

    text = json.dumps(topology_schema(), indent=2) + "\n"
    if args.output:
        with open(args.output, "w", encoding="utf-8") as out:
            out.write(text)
    else:
        print(text, end="")
    return 0
