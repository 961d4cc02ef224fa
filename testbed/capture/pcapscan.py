"""Streaming a pcap once for every expectation that reads it.

Packets are read one at a time with scapy's RawPcapReader (never a whole file in memory)
and decoded by hand: the IPv4 addresses, protocol, ports and TCP flags are a few bytes at
fixed offsets, and reading them directly is ~30x faster than a full scapy dissection.
When every expectation on the pcap can say which packets it could possibly match (a BPF
expression), tcpdump pre-filters the file in C and pipes only those packets to us; the
Python matchers stay the authority, the filter only has to be a superset.

A truncated pcap is an error, never a shorter count: tcpdump reports it when it reads the
file; when we read it directly, the record sizes must add up to the file's size.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from testbed.errors import CaptureError

# match(src, dst, proto, sport, dport, flags) -> bool; None matches every frame
Match = Callable[[bytes, bytes, int, int, int, int], bool]
# add(ts, wire_length, src, dst, proto, sport, dport)
Add = Callable[[float, int, bytes, bytes, int, int, int], None]
# the same with the transport payload (as captured: snaplen may cut it) for sinks that
# read it; the payload is only sliced out when some sink asks for it
AddPayload = Callable[[float, int, bytes, bytes, int, int, int, bytes], None]

PCAPNG_MAGIC = b"\x0a\x0d\x0d\x0a"
NOT_IP = -1  # proto of frames that are not IPv4; ports/flags of packets without them


@dataclass
class Sink:
    """One consumer of a pcap's packets: a matcher, what to do with matches, and a BPF
    expression that keeps at least every packet `match` accepts (None: needs them all)."""

    match: Match | None
    add: Add
    bpf: str | None
    add_payload: AddPayload | None = None  # called instead of `add`, with the payload


# link type -> (offset of the 2-byte ethertype or None if the frame is bare IP, IP offset)
_LINK_LAYERS: dict[int, tuple[int | None, int]] = {
    1: (12, 14),     # Ethernet (VLAN-tagged frames are not decoded, as in plain BPF)
    113: (14, 16),   # Linux cooked (tcpdump -i any)
    276: (0, 20),    # Linux cooked v2
    101: (None, 0),  # raw IP
    12: (None, 0),   # raw IP (DLT_RAW on some systems)
    14: (None, 0),
    228: (None, 0),  # IPv4
}


def union_filter(sinks: Sequence[Sink]) -> str | None:
    """One BPF expression for the whole pass, or None when some sink needs every frame."""
    parts = [s.bpf for s in sinks]
    if not parts or any(p is None for p in parts):
        return None
    unique = list(dict.fromkeys(p for p in parts if p))
    return " or ".join(f"({p})" for p in unique)


def scan(path: Path, sinks: Sequence[Sink], prefilter: bool = True) -> int:
    """Feed every packet of the pcap to the sinks; return how many were decoded."""
    try:
        with open(path, "rb") as probe:
            magic = probe.read(4)
    except OSError as exc:
        raise CaptureError(f"cannot read pcap {path}: {exc.strerror}") from None
    bpf = union_filter(sinks) if prefilter else None
    tcpdump = shutil.which("tcpdump")
    if tcpdump and (bpf or magic == PCAPNG_MAGIC):
        return _scan_piped(path, sinks, [tcpdump, "-Z", "root", "-n", "-r", str(path),
                                         "-w", "-", *([bpf] if bpf else [])])
    if magic == PCAPNG_MAGIC:
        raise CaptureError(f"{path} is pcapng: reading it needs tcpdump (not installed)")
    with open(path, "rb") as stream:
        count, consumed = _decode(stream, path, sinks)
        size = path.stat().st_size
    if consumed != size:
        raise CaptureError(f"pcap {path} is truncated: its {count} complete packets end at "
                           f"byte {consumed}, the file has {size} bytes (was the capture "
                           "killed, or the file cut?)")
    return count


def _scan_piped(path: Path, sinks: Sequence[Sink], argv: list[str]) -> int:
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    try:
        try:
            count, _ = _decode(proc.stdout, path, sinks)
        except CaptureError:
            proc.stdout.close()
            proc.wait()
            stderr = proc.stderr.read().decode(errors="replace").strip()
            if stderr and proc.returncode:
                raise CaptureError(_tcpdump_problem(path, stderr)) from None
            raise
        proc.stdout.close()
        stderr = proc.stderr.read().decode(errors="replace").strip()
        if proc.wait() != 0:
            raise CaptureError(_tcpdump_problem(path, stderr))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stderr.close()
    return count


def _tcpdump_problem(path: Path, stderr: str) -> str:
    lines = [ln for ln in stderr.splitlines() if not ln.startswith("reading from file")]
    text = "; ".join(lines) or stderr
    if "truncated" in text:
        return f"pcap {path} is truncated ({text})"
    return f"cannot read pcap {path}: {text}"


def _decode(stream: IO[bytes], path: Path, sinks: Sequence[Sink]) -> tuple[int, int]:
    """The hot loop: (packets decoded, bytes of complete records consumed)."""
    from scapy.error import Scapy_Exception
    from scapy.utils import RawPcapReader

    try:
        reader: Any = RawPcapReader(stream)  # type: ignore[arg-type]  # takes file objects
    except (Scapy_Exception, EOFError) as exc:
        raise CaptureError(f"{path} is not a readable pcap ({exc})") from None
    layer = _LINK_LAYERS.get(reader.linktype)
    if layer is None:
        raise CaptureError(f"{path}: link type {reader.linktype} is not supported (Ethernet, "
                           "Linux cooked and raw IP are)")
    type_at, ip_at = layer
    scale = 1e-9 if reader.nano else 1e-6
    pairs = [(s.match, s.add, s.add_payload) for s in sinks]
    wants_payload = any(s.add_payload is not None for s in sinks)
    payload = b""
    count = 0
    consumed = 24
    for data, meta in reader:
        count += 1
        consumed += 16 + meta.caplen
        if len(data) < meta.caplen and meta.caplen <= 65535:
            raise CaptureError(f"pcap {path} is truncated: packet {count} has "
                               f"{len(data)} of its {meta.caplen} bytes")
        ts = meta.sec + meta.usec * scale
        proto = sport = dport = flags = NOT_IP
        src = dst = b""
        if type_at is None:
            is_ip = len(data) > ip_at and data[ip_at] >> 4 == 4
        else:
            is_ip = data[type_at:type_at + 2] == b"\x08\x00"
        if is_ip and len(data) >= ip_at + 20:
            proto = data[ip_at + 9]
            src = data[ip_at + 12:ip_at + 16]
            dst = data[ip_at + 16:ip_at + 20]
            l4 = ip_at + (data[ip_at] & 15) * 4
            first_fragment = not (data[ip_at + 6] & 0x1F or data[ip_at + 7])
            if first_fragment and (proto == 6 or proto == 17) and len(data) >= l4 + 4:
                sport = data[l4] << 8 | data[l4 + 1]
                dport = data[l4 + 2] << 8 | data[l4 + 3]
                if proto == 6 and len(data) > l4 + 13:
                    flags = data[l4 + 13]
                if wants_payload and (proto == 17 or len(data) > l4 + 12):
                    # after the UDP header (8 bytes) or the TCP header (its data offset)
                    payload = data[l4 + (8 if proto == 17 else (data[l4 + 12] >> 4) * 4):]
        length = meta.wirelen
        for match, add, add_payload in pairs:
            if match is None or match(src, dst, proto, sport, dport, flags):
                if add_payload is not None:
                    add_payload(ts, length, src, dst, proto, sport, dport, payload)
                else:
                    add(ts, length, src, dst, proto, sport, dport)
        payload = b""
    return count, consumed
