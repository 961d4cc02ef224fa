"""Configuring a lab's nodes through netlink from the testbed's own process (rtnl.py),
instead of an `ip` and a `tc` process per namespace: the per-node stage of a build."""
