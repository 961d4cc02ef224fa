"""Provisioning of the reference overlay peer: one PeerConfig per login/peer node.

Credentials and the login server's key pair derive from the lab name and the overlay
seed, so the same topology always gets the same lab (and nothing secret is stored
anywhere but in the lab's own state directory).
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import sys

from testbed.nodes.base import ServiceSpec
from testbed.peer.auth import TokenSigner
from testbed.peer.clock import LabClock
from testbed.peer.config import PeerConfig
from testbed.plan.model import NetworkPlan, PlannedNode
from testbed.topology.model import LoginCapacity, OverlaySettings, SupernodeCapacity

CONFIG_NAME = "peer.json"


def peer_service() -> ServiceSpec:
    return ServiceSpec("peer", (sys.executable, "-m", "testbed", "peer", "--config",
                                "{state_dir}/" + CONFIG_NAME), peer_config=CONFIG_NAME)


def _secret(plan: NetworkPlan, overlay: OverlaySettings, what: str) -> bytes:
    return hashlib.sha256(f"{plan.lab}:{overlay.seed}:{what}".encode()).digest()


def password_of(plan: NetworkPlan, overlay: OverlaySettings, user: str) -> str:
    return hmac.new(_secret(plan, overlay, "passwords"), user.encode(),
                    hashlib.sha256).hexdigest()[:24]


def signer_of(plan: NetworkPlan, overlay: OverlaySettings) -> TokenSigner:
    return TokenSigner.from_bytes(_secret(plan, overlay, "login-key"))


def is_supernode_capable(node: PlannedNode, overlay: OverlaySettings) -> bool:
    """Eligible: labelled so, public (no NAT, no proxy in the way), and enough upload."""
    if not node.node.labels.get(overlay.sn_label) or node.realm != "public":
        return False
    minimum = (overlay.supernode or SupernodeCapacity()).min_bandwidth
    uplink = next((i for i in node.interfaces if i.name == node.uplink_interface), None)
    rate = uplink.shaping.rate if uplink else None
    return rate is None or rate >= minimum


def login_address(plan: NetworkPlan, overlay: OverlaySettings) -> str:
    if "overlay.login" not in plan.memo:
        plan.memo["overlay.login"] = _login_address(plan, overlay)
    address: str = plan.memo["overlay.login"]
    return address


def _login_address(plan: NetworkPlan, overlay: OverlaySettings) -> str:
    for node in plan.nodes.values():
        if node.kind == "login" and node.node.command is None and node.primary_address():
            return f"{node.primary_address()}:{overlay.login_port}"
    return ""


def proxy_for(node: PlannedNode, plan: NetworkPlan) -> str | None:
    """The HTTP proxy a node behind a proxy-only firewall must tunnel through."""
    if "overlay.proxy_only" not in plan.memo:  # the few proxy-only gateways, found once
        plan.memo["overlay.proxy_only"] = [
            g for g in plan.nodes.values() if g.node.firewall
            and g.node.firewall.egress == "proxy-only" and g.node.firewall.proxy
            and g.node.firewall.proxy in plan.nodes]
    for gateway in plan.memo["overlay.proxy_only"]:
        fw = gateway.node.firewall
        if (gateway.inner_realm == node.realm or gateway.name == node.node.uplink) and fw \
                and fw.proxy:
            proxy = plan.nodes[fw.proxy]
            port = proxy.node.proxy.port if proxy.node.proxy else 8888
            return f"{proxy.primary_address()}:{port}"
    return None


def _supernode_addresses(plan: NetworkPlan, overlay: OverlaySettings) -> list[str]:
    """Every supernode-capable peer's address, by name: once per plan, not per peer."""
    if "overlay.supernodes" not in plan.memo:
        names = sorted(n.name for n in plan.nodes.values()
                       if n.kind == "peer" and n.node.command is None
                       and is_supernode_capable(n, overlay))
        plan.memo["overlay.supernodes"] = [plan.nodes[n].primary_address() for n in names]
    addresses: list[str] = plan.memo["overlay.supernodes"]
    return addresses


def supernode_capacity(node: PlannedNode, overlay: OverlaySettings) -> SupernodeCapacity:
    """The overlay's supernode settings with the node's own `supernode:` on top."""
    sn = overlay.supernode or SupernodeCapacity()
    own = node.node.supernode
    if own is None:
        return sn
    return dataclasses.replace(sn, **{k: v for k, v in dataclasses.asdict(own).items()
                                      if v is not None})


def peer_config(node: PlannedNode, plan: NetworkPlan, overlay: OverlaySettings) -> PeerConfig:
    """The node's config on the lab's clock (testbed/peer/clock.py): durations x time_scale,
    rates / time_scale; the retry policy's timers are scaled by the peer itself, since a
    scenario may swap the policy while it runs."""
    clock = LabClock(overlay.time_scale)
    login = overlay.login or LoginCapacity()
    sn = supernode_capacity(node, overlay)
    addresses = [f"{address}:{sn.port}" for address in _supernode_addresses(plan, overlay)]
    shift = (node.node.index or sum(node.name.encode())) % max(1, len(addresses))
    signer: TokenSigner = plan.memo.get("overlay.signer") or plan.memo.setdefault(
        "overlay.signer", signer_of(plan, overlay))
    common = dict(
        node=node.name, address=node.primary_address() or "", state_dir=".",
        login_server=login_address(plan, overlay), public_key=signer.public_bytes().hex(),
        mgmt_address=(node.mgmt_address or "").split("/")[0],
        metrics_port=overlay.metrics_port, policy=overlay.policy,
        time_scale=overlay.time_scale, seed=overlay.seed + (node.node.index or 0),
    )
    if node.kind == "login":
        users = {n.name: password_of(plan, overlay, n.name) for n in plan.nodes.values()
                 if n.kind == "peer" and n.node.command is None}
        capacity = {"rate": clock.rate(login.rate), "queue": login.queue,
                    "when_full": login.when_full,
                    "retry_after": clock.duration(login.retry_after)}
        return PeerConfig(role="login", signing_key=signer.private_bytes().hex(),
                          users=users, login=capacity, **common)  # type: ignore[arg-type]
    return PeerConfig(
        role="peer", user=node.name, password=password_of(plan, overlay, node.name),
        bootstrap=addresses[shift:] + addresses[:shift],
        sn_capable=is_supernode_capable(node, overlay),
        min_uptime=clock.duration(sn.min_uptime), warmup=overlay.warmup,
        proxy=proxy_for(node, plan),
        supernode={"port": sn.port, "max_children": sn.max_children,
                   "joins_per_second": clock.rate(sn.joins_per_second),
                   "overload": {"behaviour": sn.overload,
                                "retry_after": clock.duration(sn.retry_after),
                                "threshold": sn.threshold,
                                "sustain": clock.duration(sn.sustain)}},
        **common)  # type: ignore[arg-type]
