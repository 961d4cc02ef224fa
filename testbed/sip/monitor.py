"""What the run's Prometheus scrapes in a SIP lab, and the UA poller it needs.

- job `kamailio`: every registrar's own statistics (xhttp_prom) on its management
  address: REGISTERs received, replies sent by code, usrloc contacts, memory;
- job `sip_uas`: the poller (testbed/sip/poller.py), which asks every baresip over its
  control interface whether it is registered.

Both only exist when the topology has registrar / sip_ua nodes; a lab without them gets
no extra job and no extra process.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from testbed.backends.base import ProcessControl, StateStore
from testbed.plan.model import NetworkPlan
from testbed.process.namespaces import netns_path
from testbed.process.records import ProcessRecord
from testbed.sip.baresip import CTRL_PORT
from testbed.topology.model import RegistrarSettings

POLLER_PORT = 9103


def _mgmt(address: str | None) -> str:
    return (address or "").split("/")[0]


def user_agents(plan: NetworkPlan) -> list[str]:
    """The SIP service's users (the denominator of the registered fraction)."""
    return sorted(n.name for n in plan.nodes.values()
                  if n.kind == "sip_ua" and n.namespace and not n.node.held_back)


def aor_of(plan: NetworkPlan, name: str) -> str:
    """The SIP address of record a UA registers (sip:NODE@REGISTRAR:PORT)."""
    from testbed.nodes.sip_ua import registrar_name

    registrars = sorted(n.name for n in plan.nodes.values() if n.kind == "registrar")
    target = plan.nodes[registrar_name(plan.nodes[name].node, registrars) or registrars[0]]
    port = (target.node.registrar or RegistrarSettings()).port
    return f"sip:{name}@{target.primary_address()}:{port}"


def relay_of(plan: NetworkPlan, name: str) -> str | None:
    """The address of the RTP relay the UA's registrar runs, None without one."""
    from testbed.nodes.sip_ua import registrar_name

    registrars = sorted(n.name for n in plan.nodes.values() if n.kind == "registrar")
    chosen = registrar_name(plan.nodes[name].node, registrars)
    if chosen is None:
        return None
    target = plan.nodes[chosen]
    if (target.node.registrar or RegistrarSettings()).media_relay != "nat":
        return None
    return target.primary_address()


def scrape_configs(plan: NetworkPlan) -> list[dict[str, Any]]:
    registrars = []
    for node in plan.nodes.values():
        if node.kind == "registrar" and node.mgmt_address:
            port = (node.node.registrar or RegistrarSettings()).metrics_port
            registrars.append({"targets": [f"{_mgmt(node.mgmt_address)}:{port}"],
                               "labels": {"node": node.name, "kind": "registrar"}})
    jobs: list[dict[str, Any]] = []
    if registrars:
        jobs.append({"job_name": "kamailio", "static_configs": registrars})
    if user_agents(plan):
        hub = _mgmt(plan.mgmt_bridge_address)
        jobs.append({"job_name": "sip_uas",
                     "static_configs": [{"targets": [f"{hub}:{POLLER_PORT}"]}]})
    return jobs


def start_poller(plan: NetworkPlan, state: StateStore, processes: ProcessControl,
                 workdir: Path, interval: float) -> ProcessRecord | None:
    """Start the UA poller in the management namespace (journaled); None without UAs."""
    names = user_agents(plan)
    if not names:
        return None
    uas = [{"node": name, "host": _mgmt(plan.nodes[name].mgmt_address), "port": CTRL_PORT,
            "group": plan.nodes[name].node.group or "", "aor": aor_of(plan, name)}
           for name in names if plan.nodes[name].mgmt_address]
    config = workdir / "sip-poller.json"
    registrars = [{"node": n.name, "netns": str(netns_path(n.namespace))}
                  for n in plan.nodes.values() if n.kind == "registrar" and n.namespace]
    config.write_text(json.dumps({"host": _mgmt(plan.mgmt_bridge_address),
                                  "port": POLLER_PORT, "interval": interval, "uas": uas,
                                  "registrars": registrars}, indent=1))
    record = processes.start_process(
        node="", service="sip-poller", namespace=plan.mgmt_namespace,
        argv=(sys.executable, "-m", "testbed.sip.poller", str(config)), env={}, cwd=workdir,
        log=workdir / "sip-poller.log")
    state.record({"op": "process", **record.__dict__})
    return record


def workload_of(plan: NetworkPlan) -> str:
    """"sip" when the lab's users are SIP UAs, else "overlay"."""
    return "sip" if user_agents(plan) else "overlay"


def run_info(plan: NetworkPlan) -> dict[str, Any]:
    """run.json's overlay fields for a SIP run, so the report does not show the overlay's
    defaults: the registrar's variant for the policy, its rate limit (if any) for the
    login capacity, real time."""
    settings = [n.node.registrar or RegistrarSettings() for n in plan.nodes.values()
                if n.kind == "registrar"]
    variant = settings[0].variant if settings else "plain"
    return {"workload": "sip", "policy": f"sip {variant}", "time_scale": 1.0,
            "login_capacity": settings[0].rate if variant == "overload-control" else None,
            "supernode_overload": None}
