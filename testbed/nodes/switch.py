"""`switch`: an L2 segment (a Linux bridge, or an Open vSwitch bridge with `switch: {type:
ovs}`, in the lab's fabric namespace); no namespace of its own."""

from __future__ import annotations

from typing import ClassVar

from testbed.nodes.base import NodeKind


class SwitchKind(NodeKind):
    name: ClassVar[str] = "switch"
    description: ClassVar[str] = ("an L2 switch (Linux bridge or Open vSwitch); nodes on it "
                                  "share one subnet")
    has_namespace: ClassVar[bool] = False
    is_gateway: ClassVar[bool] = True
    sections: ClassVar[frozenset[str]] = frozenset({"switch"})
