"""`testbed inspect`: what a running lab holds - nodes, roles, addresses, services, state."""

from __future__ import annotations

import argparse
import json
from typing import Any

from testbed.cli.common import add_lab_arg, find


def add_parser(sub: Any) -> None:
    p = sub.add_parser("inspect", help="table of a running lab's nodes (root)",
                       description="Show each node of a running lab: kind, realm (public or "
                                   "behind which NAT), addresses, management address, "
                                   "services and whether they run.")
    add_lab_arg(p)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--kind", help="only nodes of this kind")
    p.set_defaults(run=run)


def lab_report(state: Any) -> dict[str, Any]:
    """The lab summary plus live facts: namespace present, services alive."""
    from testbed.process import namespaces
    from testbed.process.supervisor import is_alive

    summary: dict[str, Any] = state.summary()
    journal = state.read()
    services: dict[str, list[dict[str, Any]]] = {}
    for record in journal.processes:
        services.setdefault(record.node, []).append(
            {"service": record.service, "pid": record.pid, "alive": is_alive(record),
             "log": record.log})
    for name, node in summary["nodes"].items():
        node["services"] = services.get(name, [])
        ns = node["namespace"]
        node["state"] = ("up" if ns is None or namespaces.exists(ns) else "missing")
        if any(not s["alive"] for s in node["services"]):
            node["state"] = "degraded"
    summary["status"] = journal.status
    return summary


def run(args: argparse.Namespace) -> int:
    state = find(args)
    report = lab_report(state)
    nodes = {n: v for n, v in report["nodes"].items()
             if not args.kind or v["kind"] == args.kind}
    if args.json:
        print(json.dumps({**report, "nodes": nodes}, indent=1, sort_keys=True))
        return 0
    rows = [("NODE", "KIND", "REALM", "ADDRESSES", "MGMT", "SERVICES", "STATE")]
    for name, node in nodes.items():
        addresses = _addresses(node["interfaces"])
        svc = ",".join(f"{s['service']}:{s['pid'] if s['alive'] else 'dead'}"
                       for s in node["services"]) or "-"
        kind = node["kind"] + (f"({node['nat_type']})" if node.get("nat_type") else "")
        rows.append((name, kind, node["realm"], addresses,
                     (node["mgmt_address"] or "-").split("/")[0], svc, node["state"]))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        cells = (cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        print("  ".join(cells).rstrip())
    print(f"\nlab {report['lab']!r}: {len(report['nodes'])} nodes, status {report['status']},"
          f" state in {report['state_dir']}")
    return 0


def _addresses(interfaces: list[dict[str, Any]], shown: int = 2) -> str:
    """A router may have hundreds: show the first few and how many more."""
    all_addresses = [i["address"] for i in interfaces if i["address"]]
    text = ",".join(all_addresses[:shown]) or "-"
    if len(all_addresses) > shown:
        text += f" (+{len(all_addresses) - shown})"
    return text
