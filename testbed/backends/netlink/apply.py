"""Applying a NodeConfig with one batch of rtnetlink requests from this process.

The netlink socket is opened while the calling thread is inside the node's namespace
(setns), which binds it to that namespace for its lifetime: no process per namespace, no
helper fork. Interface indexes are looked up there too. Shaping mirrors links/shaping.py's
tc lines (HTB root 1:, one class 1:1, an optional pfifo 10:); netem stays with `tc`.
"""

from __future__ import annotations

import socket

from testbed.backends.netlink import rtnl
from testbed.backends.netlink.node_config import NodeConfig
from testbed.errors import BackendError
from testbed.links.shaping import burst_bytes
from testbed.process import namespaces

HTB_ROOT = 0x10000  # 1:
HTB_CLASS = 0x10001  # 1:1
FIFO = 0x100000  # 10: (tc handles are hex)
QUANTUM = 1514
ACKS_AT_ONCE = 64


def requests(config: NodeConfig, index: dict[str, int], clock: rtnl.PschedClock
             ) -> list[rtnl.Request]:
    """Addresses, then qdiscs, then links up, then routes (their gateways must be on a
    link that is up). Qdiscs go first because grafting a root qdisc on a device that is
    up deactivates it and waits for an RCU grace period: at 5,000 nodes those waits were
    most of the build."""
    out = [rtnl.addr_add(index[i], i, cidr) for i, cidr in config.addresses]
    for device, shaping in config.shaping:
        if shaping.rate is None:
            continue
        dev = index[device]
        out += [rtnl.htb_root(dev, device, HTB_ROOT, default_class=1),
                rtnl.htb_class(dev, device, HTB_CLASS, HTB_ROOT, shaping.rate,
                               burst_bytes(shaping.rate), QUANTUM, clock)]
        if shaping.queue is not None:
            out.append(rtnl.pfifo(dev, device, FIFO, HTB_CLASS, shaping.queue))
    out += [rtnl.link_up(index[i], i) for i in config.up]
    out += [rtnl.route_add(dst, via) for dst, via in config.routes]
    return out


def apply(config: NodeConfig, clock: rtnl.PschedClock | None = None) -> None:
    """Raises BackendError naming the namespace and the request that failed."""
    clock = clock or rtnl.PschedClock.read()
    names = dict.fromkeys([*config.up, *(i for i, _ in config.addresses),
                           *(d for d, _ in config.shaping)])
    with namespaces.inside(config.namespace):
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
        try:
            index = {name: socket.if_nametoindex(name) for name in names}
        except OSError as exc:
            sock.close()
            raise BackendError(f"configuring {config.namespace}: an interface is missing "
                               f"({', '.join(names)}): {exc.strerror}") from exc
    try:
        batch = requests(config, index, clock)
        if not batch:
            return
        sock.bind((0, 0))
        # acks come back as the kernel works: a router with hundreds of links would
        # overflow the socket's receive buffer (ENOBUFS) if all were sent first
        for start in range(0, len(batch), ACKS_AT_ONCE):
            chunk = batch[start:start + ACKS_AT_ONCE]
            sock.sendall(rtnl.encode(chunk, first_seq=start + 1))
            rtnl.check_acks(sock, chunk, first_seq=start + 1)
    except OSError as exc:
        raise BackendError(f"netlink request failed in {config.namespace}: "
                           f"{exc.strerror or exc}") from exc
    finally:
        sock.close()
