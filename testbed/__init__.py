"""outage-testbed: reproduce large P2P outages at packet level in emulated networks.

The public API is small on purpose:

    from testbed import Lab
    with Lab.up("topologies/skype-2007.yaml", homes=4) as lab:
        print(lab["home001"].cmd("ping -c1", lab["login"].ip))

`Lab` builds, attaches to, changes and removes labs; `LabNode` is one of its nodes;
`load_topology` reads a topology file (every problem at file:line); every error the
testbed raises is a `TestbedError`. Names are imported on first use, so that
`import testbed` (and `testbed --help`) stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from testbed.errors import TestbedError

if TYPE_CHECKING:
    from testbed.lab.lab import Lab
    from testbed.lab.node import LabNode
    from testbed.topology.loader import load_topology
    from testbed.topology.model import Topology

__version__ = "0.1.0"

__all__ = ["Lab", "LabNode", "TestbedError", "Topology", "__version__", "load_topology"]

_LAZY = {
    "Lab": "testbed.lab.lab",
    "LabNode": "testbed.lab.node",
    "load_topology": "testbed.topology.loader",
    "Topology": "testbed.topology.model",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'testbed' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    """The public names too (imported lazily), for help() and tab completion."""
    return sorted({*globals(), *__all__})
