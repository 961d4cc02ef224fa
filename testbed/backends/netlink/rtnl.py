"""The few rtnetlink requests a node's configuration needs, encoded with struct.

Measured: pyroute2's IPRoute costs ~33 ms per namespace here (an asyncio round trip per
request plus a dump per interface lookup), more than the `ip` and `tc` processes it was
to replace; these hand-encoded requests, sent as one batch per namespace, cost well under
a millisecond. Layouts follow <linux/netlink.h>, <linux/rtnetlink.h>, <linux/pkt_sched.h>;
the shaping matches what `tc` sends for links/shaping.py's lines (checked by
tests/integration/test_netlink_build.py against `tc -d class show`).
"""

from __future__ import annotations

import ipaddress
import os
import socket
import struct
from dataclasses import dataclass
from pathlib import Path

# message types and flags
NLMSG_ERROR = 2
RTM_NEWLINK, RTM_NEWADDR, RTM_NEWROUTE = 16, 20, 24
RTM_NEWQDISC, RTM_NEWTCLASS = 36, 40
NLM_F_REQUEST, NLM_F_ACK, NLM_F_EXCL, NLM_F_CREATE = 0x1, 0x4, 0x200, 0x400
CREATE = NLM_F_REQUEST | NLM_F_ACK | NLM_F_EXCL | NLM_F_CREATE
# attributes
IFA_ADDRESS, IFA_LOCAL = 1, 2
RTA_DST, RTA_GATEWAY = 1, 5
TCA_KIND, TCA_OPTIONS = 1, 2
TCA_HTB_PARMS, TCA_HTB_INIT, TCA_HTB_RATE64, TCA_HTB_CEIL64 = 1, 2, 6, 7
# values
IFF_UP = 0x1
RT_TABLE_MAIN, RTPROT_BOOT, RT_SCOPE_UNIVERSE, RTN_UNICAST = 254, 3, 0, 1
TC_H_ROOT = 0xFFFFFFFF
TC_LINKLAYER_ETHERNET = 1
HTB_VERSION, HTB_R2Q = 3, 10
TIME_UNITS_PER_SEC = 1_000_000


@dataclass(frozen=True)
class Request:
    """One encoded message body (no header yet) and what to call it in an error."""

    type: int
    flags: int
    body: bytes
    what: str


def _attr(kind: int, payload: bytes) -> bytes:
    length = 4 + len(payload)
    return struct.pack("HH", length, kind) + payload + b"\0" * (-length % 4)


def encode(requests: list[Request], first_seq: int = 1) -> bytes:
    out = bytearray()
    for seq, req in enumerate(requests, first_seq):
        out += struct.pack("IHHII", 16 + len(req.body), req.type, req.flags, seq, 0)
        out += req.body + b"\0" * (-len(req.body) % 4)
    return bytes(out)


def link_up(index: int, name: str) -> Request:
    body = struct.pack("BxHiII", socket.AF_UNSPEC, 0, index, IFF_UP, IFF_UP)
    return Request(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK, body, f"link set {name} up")


def addr_add(index: int, name: str, cidr: str) -> Request:
    iface = ipaddress.IPv4Interface(cidr)
    packed = iface.ip.packed
    body = (struct.pack("BBBBI", socket.AF_INET, iface.network.prefixlen, 0, 0, index)
            + _attr(IFA_LOCAL, packed) + _attr(IFA_ADDRESS, packed))
    return Request(RTM_NEWADDR, CREATE, body, f"addr add {cidr} dev {name}")


def route_add(destination: str, via: str) -> Request:
    net = ipaddress.IPv4Network("0.0.0.0/0" if destination == "default" else destination)
    body = struct.pack("BBBBBBBBI", socket.AF_INET, net.prefixlen, 0, 0, RT_TABLE_MAIN,
                       RTPROT_BOOT, RT_SCOPE_UNIVERSE, RTN_UNICAST, 0)
    if net.prefixlen:
        body += _attr(RTA_DST, net.network_address.packed)
    body += _attr(RTA_GATEWAY, ipaddress.IPv4Address(via).packed)
    return Request(RTM_NEWROUTE, CREATE, body, f"route add {destination} via {via}")


def _tcmsg(index: int, handle: int, parent: int) -> bytes:
    return struct.pack("BxHiIII", socket.AF_UNSPEC, 0, index, handle, parent, 0)


def htb_root(index: int, name: str, handle: int, default_class: int) -> Request:
    glob = struct.pack("IIIII", HTB_VERSION, HTB_R2Q, default_class, 0, 0)
    body = (_tcmsg(index, handle, TC_H_ROOT) + _attr(TCA_KIND, b"htb\0")
            + _attr(TCA_OPTIONS, _attr(TCA_HTB_INIT, glob)))
    return Request(RTM_NEWQDISC, CREATE, body, f"qdisc add dev {name} root htb")


def htb_class(index: int, name: str, classid: int, parent: int, rate_bits: int,
              burst: int, quantum: int, clock: PschedClock) -> Request:
    """rate = ceil (one class per link); burst and cburst in bytes, as tc takes them."""
    rate = rate_bits // 8  # bytes/s, as the kernel's ratespec holds it
    low = min(rate, 0xFFFFFFFF)
    spec = struct.pack("BBHhHI", 0, TC_LINKLAYER_ETHERNET, 0, -1, 0, low)
    buffer = clock.xmittime(rate, burst)
    opt = spec + spec + struct.pack("IIIII", buffer, buffer, quantum, 0, 0)
    options = _attr(TCA_HTB_PARMS, opt)
    if rate > 0xFFFFFFFF:
        options += _attr(TCA_HTB_RATE64, struct.pack("Q", rate))
        options += _attr(TCA_HTB_CEIL64, struct.pack("Q", rate))
    body = (_tcmsg(index, classid, parent) + _attr(TCA_KIND, b"htb\0")
            + _attr(TCA_OPTIONS, options))
    return Request(RTM_NEWTCLASS, CREATE, body,
                   f"class add dev {name} classid {classid >> 16:x}:{classid & 0xFFFF:x} "
                   f"htb rate {rate_bits}bit")


def pfifo(index: int, name: str, handle: int, parent: int, limit: int) -> Request:
    body = (_tcmsg(index, handle, parent) + _attr(TCA_KIND, b"pfifo\0")
            + _attr(TCA_OPTIONS, struct.pack("I", limit)))
    return Request(RTM_NEWQDISC, CREATE, body, f"qdisc add dev {name} pfifo limit {limit}")


@dataclass(frozen=True)
class PschedClock:
    """The kernel's packet-scheduler clock (/proc/net/psched), as tc reads it to turn a
    burst in bytes into the buffer time HTB keeps (tc_calc_xmittime in iproute2)."""

    tick_in_usec: float

    @classmethod
    def read(cls, path: Path = Path("/proc/net/psched")) -> PschedClock:
        t2us, us2t, clock_res = (int(x, 16) for x in path.read_text().split()[:3])
        if clock_res == 1_000_000_000:
            t2us = us2t
        return cls(t2us / us2t * clock_res / TIME_UNITS_PER_SEC)

    def xmittime(self, rate: int, size: int) -> int:
        """Ticks to send `size` bytes at `rate` bytes/s, rounded down as tc does."""
        return int(int(TIME_UNITS_PER_SEC * (size / rate)) * self.tick_in_usec)


def check_acks(sock: socket.socket, requests: list[Request], first_seq: int = 1) -> None:
    """Read one ack per request; raise OSError naming the first request that failed."""
    pending = len(requests)
    failure: tuple[int, int] | None = None
    while pending:
        data = sock.recv(65536)
        offset = 0
        while offset + 16 <= len(data):
            length, kind, _, seq, _ = struct.unpack_from("IHHII", data, offset)
            if kind == NLMSG_ERROR:
                (error,) = struct.unpack_from("i", data, offset + 16)
                pending -= 1
                if error and failure is None:
                    failure = (seq, -error)
            offset += (length + 3) & ~3
            if length == 0:
                break
    if failure is not None:
        seq, errno = failure
        raise OSError(errno, f"{requests[seq - first_seq].what}: {os.strerror(errno)}")
