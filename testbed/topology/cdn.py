"""Topology sections of the peer-assisted CDN (Kontiki/iPlayer): `origin:` and `bittorrent:`.

Kept apart from model.py so the CDN's format lives in one place; model.py imports these
classes for NodeSpec, so the loader and `testbed schema` see them like any other section.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

BT_CLIENTS: tuple[str, ...] = ("libtorrent",)


@dataclass
class OriginSettings:
    """The origin (kind origin): a real web server (lighttpd) holding a synthetic catalogue of
    episodes, which it serves over HTTP with Range support, as the BEP 19 web seed."""

    software: Literal["lighttpd"] = field(
        default="lighttpd", metadata={"doc": "the web server daemon to run"})
    port: int = field(default=80, metadata={"doc": "HTTP port", "min": 1, "max": 65535})
    episodes: int = field(default=4, metadata={"doc": "episodes in the catalogue",
                                               "min": 1, "max": 200})
    size: int = field(default=4 * 1024 * 1024, metadata={
        "doc": "size of each episode file, e.g. 4MB (generated at build)", "unit": "size"})
    piece_size: int = field(default=256 * 1024, metadata={
        "doc": "BitTorrent piece size, e.g. 256KB (a power of two, 16KB or more)",
        "unit": "size"})
    zipf: float = field(default=1.0, metadata={
        "doc": "popularity: episode k (1 = most popular) is requested with weight 1/k^zipf",
        "min": 0, "max": 5})
    disk: int = field(default=1024 * 1024 * 1024, metadata={
        "doc": "disk space of the origin for the catalogue, e.g. 1GB", "unit": "size"})
    seed: int = field(default=2007, metadata={"doc": "seed of the content and of the "
                                                     "request process"})


@dataclass
class BitTorrentSettings:
    """A home PC's download manager (kind bt_peer): a real BitTorrent client that fetches
    episodes from peers and the origin's web seed and keeps serving them in the background.
    DHT, local peer discovery, PEX, UPnP and NAT-PMP are off: the tracker is the only
    rendezvous, and the lab stays sealed."""

    client: Literal["libtorrent"] = field(
        default="libtorrent", metadata={"doc": "the BitTorrent client: libtorrent (a real "
                                               "libtorrent 2.0 session, Debian's bindings)"})
    port: int = field(default=6881, metadata={"doc": "listen port, TCP and uTP (UDP)",
                                              "min": 1024, "max": 65535})
    requests: int = field(default=2, metadata={
        "doc": "episodes this PC asks for during the request window", "min": 0, "max": 1000})
    window: float = field(default=300.0, metadata={
        "doc": "the request process spans this long from the lab's start", "unit": "duration"})
    peak_at: float = field(default=0.5, metadata={
        "doc": "evening peak: where in the window requests are densest (0..1)",
        "min": 0, "max": 1})
    peak_width: float = field(default=0.2, metadata={
        "doc": "spread of the peak, as a share of the window (standard deviation)",
        "min": 0.01, "max": 10})
    preload: float = field(default=0.0, metadata={
        "doc": "share of these PCs that hold the whole catalogue at the start (Kontiki "
               "pushed popular content to PCs in advance)", "unit": "ratio"})
    upload_rate: int | None = field(default=None, metadata={
        "doc": "upload cap of the client, e.g. 256kbit (at most the PC's uplink)",
        "unit": "bandwidth"})
    fallback_below: int | None = field(default=None, metadata={
        "doc": "peer-first delivery: a download adds the origin's web seed once its peers "
               "have delivered less than this for 10 s, e.g. 600kbit (unset: from the "
               "start, as plain BEP 19)",
        "unit": "bandwidth"})
    disk: int = field(default=512 * 1024 * 1024, metadata={
        "doc": "disk space the client may use for episodes, e.g. 500MB", "unit": "size"})
    stall_after: float = field(default=60.0, metadata={
        "doc": "a download making no progress this long counts as stalled",
        "unit": "duration"})
    give_up: float = field(default=600.0, metadata={
        "doc": "a download not finished this long after it was asked for counts as failed",
        "unit": "duration"})
