"""Prometheus scrape targets of the CDN's exporters (the hook prometheus.py calls)."""

from __future__ import annotations

from typing import Any

from testbed.p2p.provision import METRICS_PORT, mgmt
from testbed.plan.model import NetworkPlan

EXPORTING_KINDS = ("origin", "bt_peer")


def cdn_targets(plan: NetworkPlan) -> list[dict[str, Any]]:
    """One target per origin and PC, on its management address, labelled like peers'."""
    targets = []
    for node in sorted(plan.nodes.values(), key=lambda n: n.name):
        if node.kind not in EXPORTING_KINDS or not node.mgmt_address:
            continue
        labels = {"node": node.name, "kind": node.kind}
        if node.node.group:
            labels["group"] = node.node.group
        targets.append({"targets": [f"{mgmt(node)}:{METRICS_PORT}"], "labels": labels})
    return targets
