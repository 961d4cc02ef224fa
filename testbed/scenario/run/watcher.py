"""Watching a lab while its scenario plays: where a peer's crash is noticed (services
that died on their own are logged and counted, never fatal), where reboots done by
another command (a playbook's `testbed reboot`) are seen, and where the progress lines
come from."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Protocol

from testbed.metrics.outcome import series_queries
from testbed.scenario.engine import Engine

POLL_SECONDS = 2.0


class _Processes(Protocol):
    def live_processes(self, name: str) -> list[Any]: ...
    def reload(self, name: str) -> int: ...


class _DownMarkers(Protocol):
    def is_down(self, node: str) -> bool: ...
    def down_nodes(self) -> set[str]: ...


class _Exporter(Protocol):
    def is_up(self, node: str) -> bool: ...
    def node_down(self, node: str) -> None: ...
    def node_up(self, node: str, restarted: bool = True) -> None: ...
    def crashed(self, node: str) -> None: ...


class _Queryable(Protocol):
    def scalar(self, promql: str) -> float | None: ...


def died_on_its_own(node: str, runtime: _Processes, state: _DownMarkers) -> bool:
    """True when none of the node's services runs and no reboot explains it.

    A reboot by another command (a playbook's `testbed reboot`) marks the node down
    before it kills anything and clears the mark only after the new services are
    journaled. So: dead in the journal, then no mark, then still dead in the journal
    is a crash; a mark, or new processes on the second look, is a reboot."""
    if runtime.live_processes(node) or runtime.reload(node):
        return False
    if state.is_down(node):
        return False
    return not runtime.reload(node)


class Watcher:
    def __init__(self, engine: Engine, runtime: _Processes, state: _DownMarkers,
                 exporter: _Exporter, peers: list[str], nodes: set[str],
                 say: Callable[[str], None], progress_line: Callable[[], str],
                 progress_every: float) -> None:
        self.engine = engine
        self.runtime = runtime
        self.state = state
        self.exporter = exporter
        self.peers = peers
        self.nodes = nodes
        self.say = say
        self.progress_line = progress_line
        self.progress_every = progress_every
        self._thread = threading.Thread(target=self._watch, name="watcher", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def join(self, timeout: float = 5.0) -> None:
        self._thread.join(timeout)

    def _watch(self) -> None:
        reported: set[str] = set()
        rebooting: set[str] = set()  # rebooted by another command (a playbook's reboot)
        next_line = 0.0
        while not self.engine.wait_stopped(POLL_SECONDS):
            down = self.state.down_nodes()
            for node in sorted(down - rebooting):
                if node in self.nodes and self.exporter.is_up(node):
                    rebooting.add(node)
                    self.exporter.node_down(node)
                    self._observed("host_down", node)
            for node in sorted(rebooting - down):
                rebooting.discard(node)
                self.runtime.reload(node)
                self.exporter.node_up(node)
                self._observed("host_up", node)
            for node in self.peers:
                if node in down:
                    continue
                if self.exporter.is_up(node) and node not in reported \
                        and died_on_its_own(node, self.runtime, self.state):
                    reported.add(node)
                    self.exporter.crashed(node)
                    self.engine.log.write({"action": "crashed", "node": node,
                                           "actual": round(self.engine.elapsed(), 3),
                                           "outcome": "services died on their own"})
                elif node in reported and self.runtime.live_processes(node):
                    reported.discard(node)
            if self.engine.elapsed() >= next_line:
                next_line = self.engine.elapsed() + self.progress_every
                self.say(self.progress_line())

    def _observed(self, action: str, node: str) -> None:
        """A reboot another command did, as seen to within the poll: in the step log, so
        the report's trigger and the outcome metrics count it like a restart wave's."""
        self.engine.log.write({"action": action, "node": node, "observed": True,
                               "actual": round(self.engine.elapsed(), 3),
                               "outcome": "rebooted by another command (e.g. a playbook)"})


def progress_line(engine: Engine, prometheus: _Queryable | None, peers: int,
                  scrape_interval: float, steps: int, events: int, duration: float,
                  workload: str = "overlay", cdn: dict[str, str] | None = None) -> str:
    """One line of progress: time, step, events done, and the users' state: online
    fraction and supernodes, or for a P2P CDN without overlay peers (`cdn`: its series
    queries) the PCs up, the origin's egress, the share from peers, downloads running."""
    head = (f"   t={engine.elapsed():6.1f}s/{duration:.0f}s  step "
            f"{engine.current_step + 1}/{steps}  events {engine.done}/{events}  ")
    if cdn:
        return head + cdn_progress(prometheus, cdn)
    online = sn = None
    if prometheus is not None:
        try:
            queries = series_queries(peers or 1, scrape_interval, workload)
            online = prometheus.scalar(queries["online_fraction"])
            sn = prometheus.scalar(queries["supernodes"])
        except Exception:  # noqa: BLE001 - progress must never break a run
            pass
    return (f"{head}online {'?' if online is None else f'{online:6.1%}'}  supernodes "
            f"{'?' if sn is None else f'{sn:g}'}")


def cdn_progress(prometheus: _Queryable | None, queries: dict[str, str]) -> str:
    values: dict[str, float | None] = dict.fromkeys(
        ("pcs_up", "origin_egress_bytes_per_s", "peer_share", "downloads_active"))
    if prometheus is not None:
        try:
            for key in values:
                values[key] = prometheus.scalar(queries[key])
        except Exception:  # noqa: BLE001 - progress must never break a run
            pass
    up, origin, share, active = values.values()
    return (f"PCs up {'?' if up is None else f'{up:g}'}  origin "
            f"{'?' if origin is None else f'{origin * 8 / 1e6:.2f} Mbit/s'}  from peers "
            f"{'?' if share is None else f'{share:.0%}'}  downloads "
            f"{'?' if active is None else f'{active:g}'}")
