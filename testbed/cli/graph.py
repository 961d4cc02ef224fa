"""`testbed graph`: a picture of a topology (PNG/SVG via Graphviz) or its dot/mermaid text."""

from __future__ import annotations

import argparse
import subprocess
from pathlib import Path
from typing import Any

from testbed.cli.common import add_topology_args, load
from testbed.errors import TestbedError

FORMATS = ("png", "svg", "dot", "mermaid")


def add_parser(sub: Any) -> None:
    p = sub.add_parser("graph", help="draw a topology (png, svg, dot, mermaid)",
                       description="Draw a topology. Replicated nodes (count:) are folded "
                                   "into one box unless --no-fold. The format follows the "
                                   "output file's suffix (.png .svg .dot .mmd) or --format; "
                                   "without -o, dot or mermaid text goes to stdout.")
    add_topology_args(p)
    p.add_argument("-o", "--output", help="output file")
    p.add_argument("--format", choices=FORMATS, help="output format")
    p.add_argument("--no-fold", action="store_true", help="draw every replica")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from testbed.render.graph import to_dot, to_mermaid

    topology = load(args)
    fmt = args.format or _format_of(args.output)
    fold = not args.no_fold
    text = to_mermaid(topology, fold) if fmt == "mermaid" else to_dot(topology, fold)
    if fmt in ("dot", "mermaid"):
        if args.output:
            Path(args.output).write_text(text)
        else:
            print(text, end="")
        return 0
    if not args.output:
        raise TestbedError(f"--format {fmt} needs -o FILE")
    try:
        subprocess.run(["dot", f"-T{fmt}", "-o", args.output], input=text, text=True,
                       check=True, capture_output=True)
    except FileNotFoundError:
        raise TestbedError("drawing PNG/SVG needs Graphviz's `dot` (apt-get install "
                           "graphviz; the set-up installs it), or use -o FILE.dot") from None
    except subprocess.CalledProcessError as exc:
        raise TestbedError(f"dot failed: {exc.stderr}") from None
    print(f"wrote {args.output}")
    return 0


def _format_of(output: str | None) -> str:
    if not output:
        return "dot"
    suffix = Path(output).suffix.lower().lstrip(".")
    return {"mmd": "mermaid", "gv": "dot"}.get(suffix, suffix if suffix in FORMATS else "dot")
