"""Bringing a lab up (with rollback) and down. Backend-neutral: works from the journal."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

from testbed.backends.base import Backend
from testbed.backends.host_limits import neighbour_table_note
from testbed.inventory import write_inventory
from testbed.lab import interrupts
from testbed.lab.state import LabState
from testbed.plan.model import NetworkPlan
from testbed.progress import Progress
from testbed.topology.model import NatSettings, Topology


def bring_up(topology: Topology, plan: NetworkPlan, backend: Backend, state: LabState,
             progress: Progress) -> None:
    """Build the lab. On any failure or interruption (an exception, Ctrl-C, SIGTERM),
    remove what was made, then re-raise. Call from the main thread (signal handlers)."""
    with state.locked(), interrupts.rollback_on_signals() as guard:
        state.ensure_absent()
        try:
            backend.preflight(plan, state.dir)
        except BaseException:
            if not state.exists():
                shutil.rmtree(state.dir, ignore_errors=True)
            raise
        note = neighbour_table_note(len(plan.namespaces()))
        if note:
            progress.note(note)
        state.create()
        try:
            _write_inputs(topology, plan, state)
            backend.build(plan, state, progress, guard.check)
            guard.check()  # a signal whose KeyboardInterrupt Python dropped
            state.record({"op": "status", "value": "up"})
            progress.close()
        except BaseException:
            progress.close()
            progress.stage("rolling back")
            backend.teardown(state, progress)
            raise


def tear_down(backend: Backend, state: LabState, progress: Progress) -> list[str]:
    with state.locked():
        return backend.teardown(state, progress)


def _write_inputs(topology: Topology, plan: NetworkPlan, state: LabState) -> None:
    source = Path(topology.source)
    if source.is_file():
        shutil.copyfile(source, state.dir / "topology.yaml")
    state.write_summary(summarize(topology, plan, state))
    write_inventory(state)  # <state dir>/inventory.yml: Ansible can target the lab at once


def summarize(topology: Topology, plan: NetworkPlan, state: LabState) -> dict[str, object]:
    """What inspect, exec and later commands need to know about the lab, as JSON data."""
    return {
        "lab": plan.lab,
        "source": topology.source,
        "params": topology.params,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "state_dir": str(state.dir),
        "fabric_namespace": plan.fabric_namespace,
        "mgmt_namespace": plan.mgmt_namespace,
        "mgmt_hub": plan.mgmt_bridge_address,
        "nodes": {
            name: {
                "kind": node.kind,
                "group": node.node.group,
                "labels": node.node.labels,
                "namespace": node.namespace,
                "realm": node.realm,
                "nat_type": (node.node.nat or NatSettings()).type if node.kind == "nat"
                else None,
                "interfaces": [
                    {"name": i.name, "address": i.address, "peer": i.peer,
                     "rate_out": i.shaping.rate}
                    for i in node.interfaces],
                "routes": [{"destination": r.destination, "via": r.via} for r in node.routes],
                "mgmt_address": node.mgmt_address,
                "uplink": node.node.uplink,
                "state_dir": str(state.node_dir(name)),
            }
            for name, node in plan.nodes.items()
        },
    }
