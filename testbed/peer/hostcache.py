"""The client's host cache of supernode addresses, persisted in the host's state directory
(it survives a restart, as it did on a PC's disk), seeded with bootstrap supernodes."""

from __future__ import annotations

import json
import os
from pathlib import Path

MAX_ENTRIES = 200


class HostCache:
    def __init__(self, path: Path, bootstrap: list[str]) -> None:
        self.path = path
        self.entries: list[str] = []
        self._cursor = 0
        self._load()
        for sn in bootstrap:
            self.add(sn, save=False)
        self.save()

    def _load(self) -> None:
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return
        if isinstance(data, list):
            self.entries = [str(e) for e in data if isinstance(e, str) and ":" in e]

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.entries))
        os.replace(tmp, self.path)

    def add(self, sn: str, save: bool = True) -> None:
        if sn not in self.entries:
            self.entries.append(sn)
            del self.entries[:-MAX_ENTRIES]
            if save:
                self.save()

    def promote(self, sn: str) -> None:
        """A supernode that answered goes first next time."""
        if sn in self.entries:
            self.entries.remove(sn)
        self.entries.insert(0, sn)
        self.save()

    def pick(self, count: int) -> list[str]:
        """The next `count` entries, rotating so that retries try other supernodes."""
        if not self.entries:
            return []
        count = min(count, len(self.entries))
        picked = [self.entries[(self._cursor + i) % len(self.entries)] for i in range(count)]
        self._cursor = (self._cursor + count) % len(self.entries)
        return picked
