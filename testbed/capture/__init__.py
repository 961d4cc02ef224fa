"""Packet captures (tcpdump in a node's namespace) and expectations checked after a run
over its pcaps and its Prometheus data (`testbed check`)."""
