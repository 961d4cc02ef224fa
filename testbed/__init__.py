"""outage-testbed: reproduce large P2P outages at packet level in emulated networks.

The public API is small on purpose: load a topology, bring a lab up, tear it down.
"""

from testbed.errors import TestbedError

__version__ = "0.1.0"

__all__ = ["TestbedError", "__version__"]
