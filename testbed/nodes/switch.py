"""`switch`: an L2 segment (a Linux bridge in the lab's fabric namespace); no namespace."""

from __future__ import annotations

from typing import ClassVar

from testbed.nodes.base import NodeKind


class SwitchKind(NodeKind):
    name: ClassVar[str] = "switch"
    description: ClassVar[str] = "an L2 switch (Linux bridge); nodes on it share one subnet"
    has_namespace: ClassVar[bool] = False
    is_gateway: ClassVar[bool] = True
    sections: ClassVar[frozenset[str]] = frozenset()
