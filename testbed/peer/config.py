"""The per-node configuration file of the reference peer (written by the testbed at `up`).

One JSON file per node in its state directory: everything the process needs, so a
restarted peer comes back exactly as before (and keeps its host cache next to it).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from testbed.peer.login_server import LoginSettings
from testbed.peer.policies import OverloadPolicy
from testbed.peer.supernode import SupernodeSettings

Role = Literal["login", "peer"]


@dataclass(frozen=True)
class PeerConfig:
    """Durations and rates here are on the lab's clock (nodes/overlay.py converts them,
    testbed/peer/clock.py); only the named retry policy's timers are scaled by the peer
    with `time_scale`, because a scenario may swap the policy while it runs."""

    node: str
    role: Role
    address: str
    state_dir: str
    login_server: str
    public_key: str  # hex, the login server's Ed25519 public key
    mgmt_address: str = ""
    metrics_port: int = 9100
    user: str = ""
    password: str = ""
    bootstrap: list[str] = field(default_factory=list)
    policy: str = "2007"
    time_scale: float = 1.0
    sn_capable: bool = False
    min_uptime: float = 30.0  # lab seconds
    warmup: float = 0.0  # first boot: clients start within U(0, warmup) seconds
    proxy: str | None = None
    seed: int = 0
    supernode: dict[str, Any] = field(default_factory=dict)
    login: dict[str, Any] = field(default_factory=dict)
    signing_key: str = ""  # login server only
    users: dict[str, str] = field(default_factory=dict)  # login server only

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=1, sort_keys=True))

    @classmethod
    def load(cls, path: Path) -> PeerConfig:
        data = json.loads(path.read_text())
        return cls(**data)

    def supernode_settings(self) -> SupernodeSettings:
        raw = dict(self.supernode)
        overload = OverloadPolicy(**raw.pop("overload", {}))
        if "extra_tcp_ports" in raw:
            raw["extra_tcp_ports"] = tuple(raw["extra_tcp_ports"])
        return SupernodeSettings(**raw, overload=overload)

    def login_settings(self) -> LoginSettings:
        return LoginSettings(**self.login)
