"""The synthetic catalogue and the request process, as pure functions of their seeds.

Episode bytes are a seeded pseudo-random stream, so the origin and a PC that Kontiki
"pushed" an episode to in advance (preload) write identical files without copying
anything; the .torrent files come from a small bencode writer, with the origin as the
BEP 19 web seed (`url-list`). The request process (which PC asks for which episode
when: Zipf-like popularity, an evening peak) is drawn here too, so it is unit-tested
and the same topology always replays the same evening.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from testbed.topology.cdn import BitTorrentSettings, OriginSettings


def episode_name(index: int) -> str:
    """Episode 1 is the most popular."""
    return f"ep{index:02d}"


def episode_bytes(seed: int, index: int, size: int) -> bytes:
    return random.Random(f"episode:{seed}:{index}").randbytes(size)


def write_episode(path: Path, seed: int, index: int, size: int) -> None:
    """Write the episode unless an identical-sized file is there already."""
    if path.exists() and path.stat().st_size == size:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(path.suffix + ".part")
    partial.write_bytes(episode_bytes(seed, index, size))
    partial.replace(path)


def bencode(value: object) -> bytes:
    """BitTorrent's encoding (BEP 3): ints, byte strings, lists, dicts with sorted keys."""
    if isinstance(value, bool):
        raise TypeError("bencode has no booleans")
    if isinstance(value, int):
        return b"i%de" % value
    if isinstance(value, str):
        value = value.encode()
    if isinstance(value, bytes):
        return b"%d:%s" % (len(value), value)
    if isinstance(value, (list, tuple)):
        return b"l" + b"".join(bencode(v) for v in value) + b"e"
    if isinstance(value, dict):
        items = sorted((k.encode() if isinstance(k, str) else k, v) for k, v in value.items())
        return b"d" + b"".join(bencode(k) + bencode(v) for k, v in items) + b"e"
    raise TypeError(f"cannot bencode {type(value).__name__}")


def torrent(content: bytes, name: str, piece_size: int, announce: str, web_seed: str
            ) -> tuple[bytes, str]:
    """A single-file .torrent (and its info hash, hex) with `web_seed` as BEP 19 url-list."""
    pieces = b"".join(hashlib.sha1(content[i:i + piece_size]).digest()  # noqa: S324 - BEP 3
                      for i in range(0, len(content), piece_size))
    info = {"name": name, "length": len(content), "piece length": piece_size,
            "pieces": pieces}
    meta = bencode({"announce": announce, "url-list": [web_seed], "info": info,
                    "created by": "outage-testbed"})
    return meta, hashlib.sha1(bencode(info)).hexdigest()  # noqa: S324 - the info hash


def info_hashes(origin: OriginSettings) -> list[str]:
    """The catalogue's info hashes (hex), episode 1 first: the tracker's whitelist."""
    return [torrent(episode_bytes(origin.seed, i, origin.size), f"{episode_name(i)}.bin",
                    origin.piece_size, "", "")[1] for i in range(1, origin.episodes + 1)]


def popularity(origin: OriginSettings) -> list[float]:
    """Zipf-like weights of episodes 1..N, normalised to sum 1."""
    raw = [1 / (k ** origin.zipf) for k in range(1, origin.episodes + 1)]
    total = sum(raw)
    return [w / total for w in raw]


@dataclass(frozen=True)
class Request:
    at: float  # seconds after the PC's first start
    episode: int


def requests_of(peer_index: int, bt: BitTorrentSettings, origin: OriginSettings
                ) -> list[Request]:
    """The PC's requests: distinct episodes drawn by popularity, at times from a normal
    density around the evening peak, cut to the window."""
    rng = random.Random(f"requests:{origin.seed}:{peer_index}")
    weights = popularity(origin)
    wanted: list[int] = []
    left = list(range(1, origin.episodes + 1))
    for _ in range(min(bt.requests, origin.episodes)):
        pick = rng.choices(left, weights=[weights[e - 1] for e in left])[0]
        left.remove(pick)
        wanted.append(pick)
    times = []
    for _ in wanted:
        t = -1.0
        while not 0 <= t <= bt.window:
            t = rng.gauss(bt.peak_at * bt.window, bt.peak_width * bt.window)
        times.append(round(t, 2))
    return [Request(t, e) for t, e in zip(sorted(times), wanted, strict=True)]


def preloaded(peers: Sequence[str], share: float, seed: int) -> set[str]:
    """Which PCs hold the whole catalogue at the start: round(share x PCs), seeded."""
    count = round(share * len(peers))
    return set(random.Random(f"preload:{seed}").sample(sorted(peers), count))


def worst_case_disk(bt: BitTorrentSettings, origin: OriginSettings) -> int:
    """Bytes a PC may come to hold: every episode it asks for, or all when preloaded."""
    held = origin.episodes if bt.preload > 0 else min(bt.requests, origin.episodes)
    return held * origin.size


def pieces_of(size: int, piece_size: int) -> int:
    return math.ceil(size / piece_size)
