"""Mininet for Mininet users: `mn --custom/--topo` topologies in (`topo.py`), Mininet's own
CLI on a running lab (`net.py`, `nodes.py`). Mininet is imported only inside these modules."""

from testbed.mininet.topo import from_mininet

__all__ = ["from_mininet"]
