"""`testbed export`: the same network as `testbed up` builds, for another engine."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from testbed.cli.common import add_topology_args, load

if TYPE_CHECKING:
    from testbed.plan.model import NetworkPlan
    from testbed.topology.model import Topology


DEPLOY = {"containerlab": "sudo containerlab deploy -t {file}",
          "clabernetes": "clabverter --stdout --naming non-prefixed (in {file}'s directory) "
                         "| kubectl apply -f -"}


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "export", help="write the lab as a containerlab topology (no root needed)",
        description="Write the network `testbed up` would build as a containerlab topology: "
                    "kind linux nodes on the node image (images/node/Containerfile), veth "
                    "links, and per node the exec lines that set up addresses, routes, NAT "
                    "and firewall rules, shaping and its service. Deploy it with "
                    "containerlab, or with clabernetes through clabverter "
                    "(docs/multi-machine.md). `testbed up FILE.clab.yml` imports it again.")
    add_topology_args(p)
    p.add_argument("--format", choices=["containerlab", "clabernetes"], default="containerlab",
                   help="containerlab (default): each node's commands run in its configure "
                        "stage, after its gateway's; clabernetes: the same file with the "
                        "commands as plain exec: lines, for clabverter, which drops stages "
                        "(pods come up in no particular order)")
    p.add_argument("-o", "--output", metavar="FILE",
                   help="where to write it, e.g. lab.clab.yml (default: standard output)")
    p.add_argument("--image", help="the node image (default "
                                   "localhost/outage-testbed-node:latest)")
    p.add_argument("--state-root", metavar="DIR",
                   help="where each node keeps its files, <DIR>/<node> inside the node "
                        "(default /var/lib/testbed)")
    p.add_argument("--prometheus", metavar="FILE",
                   help="also write the scrape targets (Prometheus file_sd JSON: the "
                        "management address:port of every node the native lab's Prometheus "
                        "scrapes - reference peers, login servers, SIP registrars, the CDN's "
                        "origin and PCs - labelled node, kind, group) for a Prometheus on "
                        "the management network")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from testbed.export.containerlab import ExportOptions, export_containerlab
    from testbed.plan.build import build_plan

    topology = load(args)
    plan = build_plan(topology)
    options = ExportOptions(flavour=args.format)
    if args.image:
        options.image = args.image
    if args.state_root:
        options.state_root = args.state_root.rstrip("/") or "/"
    export = export_containerlab(topology, plan, options)
    for note in export.notes:
        print(f"note: {note}", file=sys.stderr)
    text = export.dump()
    if args.output:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)  # e.g. c9s/lab.clab.yml
        Path(args.output).write_text(text)
        nodes = len(export.document["topology"]["nodes"])
        links = len(export.document["topology"]["links"])
        print(f"wrote {args.output}: containerlab topology {topology.name!r}, {nodes} nodes, "
              f"{links} links. Deploy: {DEPLOY[args.format].format(file=args.output)}")
    else:
        sys.stdout.write(text)
    if args.prometheus:
        targets = scrape_targets(topology, plan)
        Path(args.prometheus).write_text(json.dumps(targets, indent=1) + "\n")
        print(f"wrote {args.prometheus}: {len(targets)} scrape targets on the management "
              f"network (file_sd_configs)", file=sys.stderr)
    return 0


def scrape_targets(topology: Topology, plan: NetworkPlan) -> list[dict[str, Any]]:
    """The node targets the native lab's Prometheus scrapes (metrics/prometheus.py), on
    the management addresses the export keeps: the reference overlay's peers and login
    servers, the SIP registrars' own statistics, the CDN's origin and PCs. What runs
    beside the lab natively (the testbed exporter, the SIP UA poller) is not a node."""
    from testbed.metrics.prometheus import scrape_targets as overlay_targets
    from testbed.p2p.targets import cdn_targets
    from testbed.sip.monitor import scrape_configs as sip_scrape_configs

    port = topology.overlay.metrics_port if topology.overlay else 9100
    targets = overlay_targets(plan, port)
    for job in sip_scrape_configs(plan):
        if job["job_name"] == "kamailio":
            targets += job["static_configs"]
    return targets + cdn_targets(plan)
