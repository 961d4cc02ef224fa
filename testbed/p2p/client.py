"""A home PC's download manager: a libtorrent session driven on a request schedule.

`python -m testbed.p2p.client --config bt.json` (cwd: the node's state directory).
Kontiki's behaviour: episodes are fetched from peers and the origin's web seed (BEP 19),
and every episode on disk is served in the background for as long as the PC runs,
across reboots (the files, the metainfo and what was asked for when stay in the state
directory, like on a PC's disk). With `fallback_below` (peer-first delivery), a download
starts with peers only and attaches the web seed once its peers have delivered less than
that rate for 10 s; the origin then helps until the episode is complete.

Its /metrics on the management address (port 9100) come from libtorrent's own status
and per-peer statistics, so bytes are told apart by source: `source="peer"` or
`source="origin"` (a web-seed connection).
"""

from __future__ import annotations

import argparse
import json
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from testbed.p2p.catalogue import episode_name, write_episode

BUCKETS = (5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 300, 600, 1200)
# every torrent, seeding too, announces this often (not the tracker's 30 min): a seed learns
# of new downloaders and a downloader of returning seeds in seconds, and the announces keep
# the PC's NAT mapping of its listen port alive
REANNOUNCE_EVERY = 15.0
FALLBACK_AFTER = 10.0  # seconds below the rate before the web seed is attached (peers
# found through the tracker take a few seconds to connect through the NATs)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.received = Counter("bt_payload_received_bytes", "payload received, by source "
                                "(peer or origin web seed)", ["source"], registry=r)
        self.sent = Counter("bt_payload_sent_bytes", "payload sent to other peers",
                            registry=r)
        self.requested = Counter("bt_downloads_requested", "episodes asked for", registry=r)
        self.completed = Counter("bt_downloads_completed", "episodes finished", registry=r)
        self.failed = Counter("bt_downloads_failed", "episodes not finished within give_up",
                              registry=r)
        self.seconds = Histogram("bt_download_seconds", "from asking for an episode to "
                                 "having it all", buckets=BUCKETS, registry=r)
        self.active = Gauge("bt_downloads_active", "downloads in progress", registry=r)
        self.stalled = Gauge("bt_downloads_stalled", "downloads without progress for "
                             "stall_after", registry=r)
        self.seeding = Gauge("bt_torrents_seeding", "complete episodes served", registry=r)
        self.peers = Gauge("bt_peers_connected", "BitTorrent peers connected (web seeds "
                           "not counted)", registry=r)
        self.web_seeds = Gauge("bt_web_seed_active", "downloads using the origin's web "
                               "seed now", registry=r)
        self.up = Gauge("bt_up", "1 while the client runs", registry=r)
        for source in ("peer", "origin"):
            self.received.labels(source)
        self.up.set(1)


@dataclass
class Download:
    episode: int
    asked_at: float  # unix time
    handle: Any = None
    done: bool = False
    web_seed_on: bool = True
    progress: int = -1
    progress_at: float = 0.0
    below_since: float | None = None
    announced_at: float = 0.0
    sent: int = 0
    received: int = 0
    peer_count: int = 0
    web: dict[tuple[Any, ...], int] = field(default_factory=dict)  # web-seed connections


class Client:
    def __init__(self, config: dict[str, Any], root: Path) -> None:
        import libtorrent as lt

        self.lt = lt
        self.config = config
        self.root = root
        self.files = root / "episodes"
        self.metainfo = root / "torrents"
        self.state_path = root / "bt-state.json"
        self.state = self._load_state()
        self.metrics = Metrics()
        self.downloads: dict[int, Download] = {}
        rate = config.get("upload_rate")
        self.session = lt.session({
            "listen_interfaces": f"{config['address']}:{config['port']}",
            "enable_dht": False, "enable_lsd": False, "enable_upnp": False,
            "enable_natpmp": False, "enable_incoming_utp": True,
            "enable_outgoing_utp": True, "allow_multiple_connections_per_ip": True,
            "upload_rate_limit": int(rate // 8) if rate else 0,
            "user_agent": "outage-testbed kontiki-like", "alert_mask": 0,
            # a web-seed request that hangs (its pieces came from a returning peer) is
            # dropped and retried within seconds, not after libtorrent's 20 s + 30 s
            "urlseed_timeout": 5, "urlseed_wait_retry": 5,
            # a peer that went away (rebooted) is given up after 20 s and blocks asked of it
            # after 10 s, so its half-fetched pieces go to others (defaults: 120 s, 60 s)
            "peer_timeout": 20, "request_timeout": 10,
        })

    # --- persistent state (the PC's disk) -------------------------------------------
    def _load_state(self) -> dict[str, Any]:
        if self.state_path.exists():
            return dict(json.loads(self.state_path.read_text()))
        return {"first_start": time.time(), "done": {}, "failed": [], "asked": []}

    def _save_state(self) -> None:
        partial = self.state_path.with_suffix(".tmp")
        partial.write_text(json.dumps(self.state))
        partial.replace(self.state_path)

    # --- torrents -------------------------------------------------------------------
    def _metainfo(self, episode: int) -> bytes | None:
        """The .torrent, from disk or else from the origin's portal (None: not now)."""
        path = self.metainfo / f"{episode_name(episode)}.torrent"
        if path.exists():
            return path.read_bytes()
        url = f"{self.config['origin']}/torrents/{episode_name(episode)}.torrent"
        try:
            with urllib.request.urlopen(url, timeout=3) as reply:  # noqa: S310 - lab only
                data = bytes(reply.read())
        except OSError:
            return None
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return data

    def _add(self, download: Download) -> bool:
        data = self._metainfo(download.episode)
        if data is None:
            return False
        lt = self.lt
        params = lt.add_torrent_params()
        params.ti = lt.torrent_info(lt.bdecode(data))
        params.save_path = str(self.files)
        params.flags |= (lt.torrent_flags.disable_pex | lt.torrent_flags.disable_dht
                         | lt.torrent_flags.disable_lsd)
        download.handle = self.session.add_torrent(params)
        download.progress_at = time.time()
        if self.config.get("fallback_below"):
            self._web_seed(download, False)
        return True

    def _web_seed(self, download: Download, on: bool) -> None:
        url = f"{self.config['origin']}/ep/{episode_name(download.episode)}.bin"
        if on:
            download.handle.add_url_seed(url)
        else:
            download.handle.remove_url_seed(url)
        download.web_seed_on = on

    def start(self) -> None:
        """Episodes on disk from before (preloaded, finished or half-fetched) come back."""
        first = self.state["first_start"]
        self._save_state()
        if self.config.get("preload"):
            for episode in range(1, self.config["episodes"] + 1):
                write_episode(self.files / f"{episode_name(episode)}.bin",
                              self.config["seed"], episode, self.config["size"])
                self.state["done"].setdefault(str(episode), 0.0)
            self._save_state()
        for key in self.state["done"]:
            self.downloads[int(key)] = Download(int(key), first, done=True)
        self._ask(time.time())

    def _ask(self, now: float) -> None:
        """The requests that are due. Each counts once over the PC's life: one due while
        the PC was down (rebooting) counts when it is back, one counted before does not
        count again."""
        first = self.state["first_start"]
        asked = self.state.setdefault("asked", [])
        for at, episode in self.config["requests"]:
            if first + at > now or episode in self.downloads:
                continue  # not yet, or held already (preloaded, or fetched before)
            self.downloads[episode] = Download(episode, first + at)
            if episode not in asked:
                asked.append(episode)
                self._save_state()
                self.metrics.requested.inc()

    def step(self, now: float) -> None:
        self._ask(now)
        active = stalled = seeding = peers = web = 0
        for download in self.downloads.values():
            if download.handle is None and not self._add(download):
                if not download.done:
                    active += 1
                continue
            status = download.handle.status()
            if now - download.announced_at >= REANNOUNCE_EVERY:
                download.handle.force_reannounce(0, -1, self.lt.reannounce_flags_t
                                                 .ignore_min_interval)
                download.announced_at = now
            self._count_bytes(download, status)
            peers += download.peer_count
            if status.is_seeding:
                seeding += 1
                if not download.done:
                    self._finished(download, now)
                continue
            if download.done:
                continue  # an episode on disk being checked after a reboot
            active += 1
            self._fallback(download, now)
            web += int(download.web_seed_on)
            if status.total_wanted_done != download.progress:
                download.progress, download.progress_at = status.total_wanted_done, now
            elif now - download.progress_at >= self.config["stall_after"]:
                stalled += 1
            key = str(download.episode)
            if now - download.asked_at >= self.config["give_up"] and \
                    key not in self.state["failed"]:
                self.state["failed"].append(key)
                self._save_state()
                self.metrics.failed.inc()
        m = self.metrics
        m.active.set(active)
        m.stalled.set(stalled)
        m.seeding.set(seeding)
        m.peers.set(peers)
        m.web_seeds.set(web)

    def _finished(self, download: Download, now: float) -> None:
        download.done = True
        took = now - download.asked_at
        self.state["done"][str(download.episode)] = round(took, 2)
        self._save_state()
        self.metrics.completed.inc()
        self.metrics.seconds.observe(took)
        if download.web_seed_on and self.config.get("fallback_below"):
            self._web_seed(download, False)

    def _count_bytes(self, download: Download, status: Any) -> None:
        """The torrent's payload received since the last look, split by source: what
        its web-seed connections delivered (per-connection deltas: a reconnect is a new
        connection) is the origin's, the rest came from peers. The torrent's own total
        bounds both, so a peer listed twice (a reconnect) is never counted twice."""
        lt = self.lt
        total = int(status.total_payload_download)
        grown = max(0, total - download.received)
        download.received = total
        web = 0
        seen: dict[tuple[Any, ...], int] = {}
        peers = 0
        for peer in download.handle.get_peer_info():
            if peer.connection_type not in (lt.peer_info.web_seed, lt.peer_info.http_seed):
                peers += 1
                continue
            key = (tuple(peer.ip), tuple(peer.local_endpoint))
            now = int(peer.total_download)
            last = download.web.get(key, 0)
            web += now - last if now >= last else now
            seen[key] = now
        download.web = seen
        download.peer_count = peers
        web = min(web, grown)
        if web:
            self.metrics.received.labels("origin").inc(web)
        if grown > web:
            self.metrics.received.labels("peer").inc(grown - web)
        sent = int(status.total_payload_upload)
        if sent > download.sent:
            self.metrics.sent.inc(sent - download.sent)
        download.sent = sent

    def _fallback(self, download: Download, now: float) -> None:
        """Peer-first: attach the web seed once peers have delivered less than the
        threshold for FALLBACK_AFTER; it then stays until the episode is complete (a
        download that lost its peers is finished by the origin)."""
        below = self.config.get("fallback_below")
        if download.web_seed_on:
            if not download.handle.url_seeds():  # libtorrent drops a web seed on errors
                self._web_seed(download, True)  # (e.g. an overloaded origin): ask again
            return
        if not below:
            return
        lt = self.lt
        rate = 8 * sum(p.payload_down_speed for p in download.handle.get_peer_info()
                       if p.connection_type not in (lt.peer_info.web_seed,
                                                    lt.peer_info.http_seed))
        if rate >= below:
            download.below_since = None
            return
        download.below_since = download.below_since or now
        if now - download.below_since >= FALLBACK_AFTER:
            self._web_seed(download, True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config", required=True)
    args = parser.parse_args(argv)
    path = Path(args.config).resolve()
    config = json.loads(path.read_text())
    client = Client(config, path.parent)
    start_http_server(config["metrics_port"], addr=config["mgmt_address"],
                      registry=client.metrics.registry)
    client.start()
    while True:
        client.step(time.time())
        time.sleep(1.0)


if __name__ == "__main__":
    main()
