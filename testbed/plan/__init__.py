"""The network plan: a topology turned into namespaces, veths, addresses and routes.

Pure data computed without touching the kernel, so `testbed validate` can find address
clashes and unit tests can check addressing and routing without root.
"""
