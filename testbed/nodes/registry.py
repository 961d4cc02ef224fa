"""Node kinds by name. Built explicitly (no import-time side effects, no global state)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from testbed.errors import TestbedError
from testbed.nodes.base import NodeKind


class UnknownKind(TestbedError):
    pass


class KindRegistry:
    def __init__(self, kinds: Iterable[NodeKind]) -> None:
        self._kinds = {k.name: k for k in kinds}

    def get(self, name: str) -> NodeKind:
        try:
            return self._kinds[name]
        except KeyError:
            raise UnknownKind(
                f"unknown node kind {name!r}; known kinds: {', '.join(self.names())}"
            ) from None

    def __contains__(self, name: object) -> bool:
        return name in self._kinds

    def __iter__(self) -> Iterator[NodeKind]:
        return iter(self._kinds.values())

    def names(self) -> list[str]:
        return sorted(self._kinds)

    def sections(self) -> list[str]:
        """Every kind-specific section of a node (nat:, proxy:, ...): each kind says
        which it owns, so the topology checks ask here instead of keeping a list."""
        return sorted({section for kind in self._kinds.values() for section in kind.sections})


def default_registry() -> KindRegistry:
    """The built-in kinds. Imported lazily so `testbed --help` stays fast."""
    from testbed.nodes.bt_peer import BtPeerKind
    from testbed.nodes.host import HostKind, LoginKind, PeerKind
    from testbed.nodes.nat import NatKind
    from testbed.nodes.origin import OriginKind
    from testbed.nodes.proxy import ProxyKind
    from testbed.nodes.registrar import RegistrarKind
    from testbed.nodes.router import RouterKind
    from testbed.nodes.sip_ua import SipUaKind
    from testbed.nodes.switch import SwitchKind
    from testbed.nodes.tracker import TrackerKind

    return KindRegistry([HostKind(), PeerKind(), LoginKind(), RouterKind(), SwitchKind(),
                         NatKind(), ProxyKind(), RegistrarKind(), SipUaKind(),  # SIP
                         OriginKind(), TrackerKind(), BtPeerKind()])  # the P2P CDN
