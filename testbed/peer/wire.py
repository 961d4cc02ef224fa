"""Wire protocol v1 framing (docs/protocol.md): encode, and decode streams and datagrams.

Decoding never trusts input: every failure is a ProtocolError with a short `reason`
label, the one the peer's protocol-error metric counts.
"""

from __future__ import annotations

import enum
import json
import struct
from dataclasses import dataclass
from typing import Any

MAGIC = b"SK"
VERSION = 1
HEADER = struct.Struct(">2sBBI")
MAX_PAYLOAD = 16384
MAX_DEPTH = 32  # nesting of JSON arrays/objects in a payload (ours use 3 at most)


class MessageType(enum.IntEnum):
    PROBE = 0x01
    PROBE_ACK = 0x02
    JOIN = 0x10
    JOIN_OK = 0x11
    BUSY = 0x12
    REGISTER = 0x13
    REGISTERED = 0x14
    LOGIN = 0x20
    LOGIN_OK = 0x21
    LOGIN_FAIL = 0x22
    KEEPALIVE = 0x30
    KEEPALIVE_ACK = 0x31
    LOOKUP = 0x40
    LOOKUP_RESULT = 0x41
    CALL = 0x50
    CALL_OK = 0x51
    RELAY = 0x52
    RELAY_OK = 0x53


REQUIRED: dict[MessageType, tuple[str, ...]] = {
    MessageType.PROBE: ("nonce",),
    MessageType.PROBE_ACK: ("nonce", "sn", "load"),
    MessageType.JOIN: ("user",),
    MessageType.JOIN_OK: ("sn", "cache"),
    MessageType.BUSY: ("retry_after",),
    MessageType.REGISTER: ("token",),
    MessageType.REGISTERED: ("user",),
    MessageType.LOGIN: ("user", "ts", "nonce", "proof"),
    MessageType.LOGIN_OK: ("token",),
    MessageType.LOGIN_FAIL: ("reason",),
    MessageType.KEEPALIVE: ("seq",),
    MessageType.KEEPALIVE_ACK: ("seq",),
    MessageType.LOOKUP: ("user", "ttl"),
    MessageType.LOOKUP_RESULT: ("user", "found"),
    MessageType.CALL: ("call", "from", "to", "media"),
    MessageType.CALL_OK: ("call", "media"),
    MessageType.RELAY: ("call", "to"),
    MessageType.RELAY_OK: ("call", "relay"),
}


class ProtocolError(Exception):
    """A frame that must be dropped; `reason` labels the metric."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


class OversizeError(ValueError):
    """A payload too big to frame: encode() refuses it. An answer that echoes a request's
    field (a PROBE's nonce, a CALL forwarded with `seen` added) can be one."""


@dataclass(frozen=True)
class Frame:
    type: MessageType
    payload: dict[str, Any]


def encode(message_type: MessageType, payload: dict[str, Any]) -> bytes:
    body = json.dumps(payload, separators=(",", ":")).encode()
    if len(body) > MAX_PAYLOAD:
        raise OversizeError(f"payload of {len(body)} bytes exceeds {MAX_PAYLOAD}")
    return HEADER.pack(MAGIC, VERSION, int(message_type), len(body)) + body


def _header(data: bytes) -> tuple[MessageType, int]:
    magic, version, kind, length = HEADER.unpack_from(data)
    if magic != MAGIC:
        raise ProtocolError("magic")
    if version != VERSION:
        raise ProtocolError("version", str(version))
    try:
        message_type = MessageType(kind)
    except ValueError:
        raise ProtocolError("type", hex(kind)) from None
    if length > MAX_PAYLOAD:
        raise ProtocolError("oversize", str(length))
    return message_type, length


def json_depth(body: bytes) -> int:
    """The deepest nesting of arrays and objects in a JSON text (brackets inside strings
    do not count). Checked before parsing: json.loads recurses once per level, so a
    frame of 5,000 `[` would otherwise raise RecursionError instead of being dropped."""
    if body.count(b"[") + body.count(b"{") <= MAX_DEPTH:
        return 0  # cannot be deeper than the bound: skip the scan (the usual case)
    depth = deepest = 0
    in_string = escaped = False
    for byte in body:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # closing quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            deepest = max(deepest, depth)
        elif byte in (0x5D, 0x7D):  # ] }
            depth -= 1
    return deepest


def _payload(message_type: MessageType, body: bytes) -> Frame:
    if json_depth(body) > MAX_DEPTH:
        raise ProtocolError("depth", f"JSON nested deeper than {MAX_DEPTH} levels")
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):  # ValueError: bad UTF-8 and JSON, and numbers
        # longer than Python converts (4,300 digits), which are not JSONDecodeErrors
        raise ProtocolError("malformed", "payload is not JSON") from None
    if not isinstance(payload, dict):
        raise ProtocolError("malformed", "payload is not an object")
    missing = [k for k in REQUIRED[message_type] if k not in payload]
    if missing:
        raise ProtocolError("malformed", f"{message_type.name} lacks {', '.join(missing)}")
    return Frame(message_type, payload)


def decode_datagram(data: bytes) -> Frame:
    """One UDP datagram holds exactly one frame."""
    if len(data) < HEADER.size:
        raise ProtocolError("truncated", f"{len(data)} bytes")
    message_type, length = _header(data)
    if len(data) != HEADER.size + length:
        raise ProtocolError("truncated" if len(data) < HEADER.size + length else "malformed",
                            "datagram length does not match its header")
    return _payload(message_type, data[HEADER.size:])


class StreamDecoder:
    """Feeds TCP bytes in, yields whole frames; raises ProtocolError on a bad frame."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[Frame]:
        self._buffer += data
        frames = []
        while len(self._buffer) >= HEADER.size:
            message_type, length = _header(bytes(self._buffer[:HEADER.size]))
            end = HEADER.size + length
            if len(self._buffer) < end:
                break
            body = bytes(self._buffer[HEADER.size:end])
            del self._buffer[:end]
            frames.append(_payload(message_type, body))
        return frames

    def pending(self) -> int:
        """Bytes of an incomplete frame; non-zero at end of stream means truncated."""
        return len(self._buffer)
