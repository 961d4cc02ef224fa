"""The testbed's own view of a node, a link and the lab, carried through a containerlab
file (under `config.vars.testbed` and `links[].vars.testbed`, which containerlab keeps
and ignores), so that importing an export gives back the same topology and plan."""

from __future__ import annotations

import dataclasses
from typing import Any

from testbed.topology.model import (
    Addressing,
    FirewallSettings,
    Link,
    LoginCapacity,
    NatSettings,
    Node,
    OverlaySettings,
    ProxySettings,
    SupernodeCapacity,
    SupernodeOverride,
    SwitchSettings,
)

KEY = "testbed"  # the key under config.vars / links[].vars
LAB_KEY = "testbed-lab"  # under topology.defaults.config.vars

_SETTINGS: dict[str, type] = {"nat": NatSettings, "firewall": FirewallSettings,
                              "proxy": ProxySettings, "supernode": SupernodeOverride,
                              "switch": SwitchSettings}


def node_vars(node: Node) -> dict[str, Any]:
    out: dict[str, Any] = {"kind": node.kind}
    if node.group:
        out["group"] = node.group
    if node.index is not None:
        out["index"] = node.index
    if node.uplink:
        out["uplink"] = node.uplink
    if node.command is not None:
        out["command"] = node.command if isinstance(node.command, str) else list(node.command)
    if node.lan_pool:
        out["lan_pool"] = node.lan_pool
    for name in _SETTINGS:
        value = getattr(node, name)
        if value is not None:
            out[name] = dataclasses.asdict(value)
    return out


def node_from_vars(name: str, data: dict[str, Any], labels: dict[str, Any],
                   env: dict[str, str], line: int | None) -> Node:
    settings = {k: _SETTINGS[k](**data[k]) if data.get(k) is not None else None
                for k in _SETTINGS}
    command = data.get("command")
    return Node(
        name=name, kind=str(data["kind"]), group=data.get("group"), index=data.get("index"),
        labels=labels, uplink=data.get("uplink"),
        command=tuple(command) if isinstance(command, list) else command,
        env=env, lan_pool=data.get("lan_pool"), line=line, held_back=False, **settings)


_LINK_FIELDS = ("rate_ab", "rate_ba", "loss", "delay", "jitter", "queue", "ip_a", "ip_b",
                "uplink_of_a", "path")


def link_vars(link: Link) -> dict[str, Any]:
    out: dict[str, Any] = {"a": link.a, "b": link.b}
    out.update({k: getattr(link, k) for k in _LINK_FIELDS if getattr(link, k) is not None})
    return out


def link_from_vars(data: dict[str, Any], source: str, line: int | None) -> Link:
    get = data.get
    return Link(a=str(data["a"]), b=str(data["b"]), rate_ab=get("rate_ab"),
                rate_ba=get("rate_ba"), loss=get("loss"), delay=get("delay"),
                jitter=get("jitter"), queue=get("queue"), ip_a=get("ip_a"), ip_b=get("ip_b"),
                uplink_of_a=bool(get("uplink_of_a")), line=line, file=source,
                path=str(get("path") or ""))


def lab_vars(description: str, addressing: Addressing, overlay: OverlaySettings | None,
             params: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"description": description,
                           "addressing": dataclasses.asdict(addressing), "params": params}
    if overlay is not None:
        out["overlay"] = dataclasses.asdict(overlay)
    return out


def overlay_from_vars(data: dict[str, Any] | None) -> OverlaySettings | None:
    if not data:
        return None
    login = LoginCapacity(**data["login"]) if data.get("login") else None
    supernode = SupernodeCapacity(**data["supernode"]) if data.get("supernode") else None
    rest = {k: v for k, v in data.items() if k not in ("login", "supernode")}
    return OverlaySettings(login=login, supernode=supernode, **rest)
