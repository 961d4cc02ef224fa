"""Wire protocol v1: round trips, and every kind of bad frame is refused with its reason."""

from __future__ import annotations

import contextlib
import random
import struct

import pytest

from testbed.peer.wire import (
    HEADER,
    MAX_PAYLOAD,
    MessageType,
    ProtocolError,
    StreamDecoder,
    decode_datagram,
    encode,
)


def test_round_trip_datagram_and_stream_in_pieces() -> None:
    data = encode(MessageType.LOGIN, {"user": "u1", "ts": 1, "nonce": "n", "proof": "p"})
    assert decode_datagram(data).payload["user"] == "u1"
    decoder = StreamDecoder()
    stream = data + encode(MessageType.KEEPALIVE, {"seq": 7})
    frames = [f for i in range(len(stream)) for f in decoder.feed(stream[i:i + 1])]
    assert [f.type for f in frames] == [MessageType.LOGIN, MessageType.KEEPALIVE]
    assert decoder.pending() == 0


@pytest.mark.parametrize(("data", "reason"), [
    (b"XX" + encode(MessageType.PROBE, {"nonce": 1})[2:], "magic"),
    (encode(MessageType.PROBE, {"nonce": 1})[:2] + b"\x09" + encode(
        MessageType.PROBE, {"nonce": 1})[3:], "version"),
    (struct.pack(">2sBBI", b"SK", 1, 0xEE, 2) + b"{}", "type"),
    (struct.pack(">2sBBI", b"SK", 1, 1, MAX_PAYLOAD + 1), "oversize"),
    (struct.pack(">2sBBI", b"SK", 1, 1, 3) + b"[1]", "malformed"),
    (struct.pack(">2sBBI", b"SK", 1, 1, 2) + b"\xff\xfe", "malformed"),
    (encode(MessageType.LOGIN, {"user": "u"}), "malformed"),
    # a number longer than Python converts (4,300 digits): ValueError, not JSONDecodeError
    (struct.pack(">2sBBI", b"SK", 1, 1, 5011) + b'{"nonce": ' + b"1" * 5000 + b"}",
     "malformed"),
    (encode(MessageType.PROBE, {"nonce": 1})[:-2], "truncated"),
    (b"SK", "truncated"),
])
def test_bad_datagrams_are_refused_with_their_reason(data: bytes, reason: str) -> None:
    with pytest.raises(ProtocolError) as caught:
        decode_datagram(data)
    assert caught.value.reason == reason


def test_stream_reports_truncation_as_pending_bytes() -> None:
    decoder = StreamDecoder()
    data = encode(MessageType.PROBE, {"nonce": 1})
    assert decoder.feed(data[:-1]) == []
    assert decoder.pending() == len(data) - 1


def test_random_bytes_never_escape_as_anything_but_protocol_errors() -> None:
    rng = random.Random(2007)
    valid = encode(MessageType.JOIN, {"user": "x"})
    for _ in range(3000):
        blob = bytearray(valid if rng.random() < 0.5 else rng.randbytes(rng.randint(0, 40)))
        for _ in range(rng.randint(0, 4)):
            if blob:
                blob[rng.randrange(len(blob))] = rng.randrange(256)
        with contextlib.suppress(ProtocolError):
            decode_datagram(bytes(blob))
        with contextlib.suppress(ProtocolError):
            StreamDecoder().feed(bytes(blob))


def test_encoder_refuses_oversize_payloads() -> None:
    with pytest.raises(ValueError, match="exceeds"):
        encode(MessageType.PROBE, {"nonce": "x" * (MAX_PAYLOAD + 1)})
    assert HEADER.size == 8
