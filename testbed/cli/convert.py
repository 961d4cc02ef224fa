"""`testbed convert`: a Mininet topology (`mn --custom FILE --topo NAME`) as topology YAML,
to extend with NATs, proxies and an overlay."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def add_parser(sub: Any) -> None:
    p = sub.add_parser("convert", help="a Mininet topology (--custom/--topo) as topology YAML",
                       description="Write the topology YAML of a Mininet topology, as `mn "
                                   "--custom FILE --topo NAME[,ARG...]` would build it: "
                                   "hosts on 10.0.0.0/8, switches as Linux bridges, TCLink "
                                   "options as link shaping. Anything without an equivalent "
                                   "is an error naming it. See docs/mininet.md.")
    p.add_argument("custom", metavar="FILE", nargs="?",
                   help="Python file with a `topos` dict (as `mn --custom FILE`)")
    p.add_argument("--topo", required=True, metavar="NAME[,ARG...]",
                   help="topology name and arguments, e.g. mytopo, linear,4, "
                        "tree,depth=2,fanout=3")
    p.add_argument("--custom", dest="more", action="append", default=[], metavar="FILE",
                   help="another custom file (as mn)")
    p.add_argument("--name", help="lab name (default from the topo)")
    p.add_argument("-o", "--output", metavar="FILE", help="YAML file (default stdout)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from testbed.mininet.topo import convert

    text = convert(args.topo, [*([args.custom] if args.custom else []), *args.more], args.name)
    if args.output:
        Path(args.output).write_text(text)
        print(f"wrote {args.output}; check it with: testbed validate {args.output}",
              file=sys.stderr)
    else:
        print(text, end="")
    return 0
