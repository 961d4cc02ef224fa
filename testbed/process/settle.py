"""After `up` starts the services: did a daemon that asked for it survive its start?

Daemons such as Kamailio or baresip exit within a second on a bad config or a port
already in use. One wait for all of them (not one per node), then every such process
still gone fails `up` with the node, the service and the daemon's own last words.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from testbed.errors import ProcessError
from testbed.process.records import ProcessRecord
from testbed.process.supervisor import is_alive

TAIL_LINES = 6


def check_settled(started: Sequence[ProcessRecord], settle: Mapping[tuple[str, str], float]
                  ) -> None:
    """`settle` maps (node, service) to the seconds it must survive; others are ignored."""
    watched = [r for r in started if settle.get((r.node, r.service), 0) > 0]
    if not watched:
        return
    time.sleep(max(settle[(r.node, r.service)] for r in watched))
    dead = [r for r in watched if not is_alive(r)]
    if dead:
        raise ProcessError("; ".join(f"{r.node}: {r.service} exited at start: "
                                     f"{_tail(r.log)}" for r in dead[:5]))


def _tail(log: str) -> str:
    try:
        lines = [line.strip() for line in Path(log).read_text(errors="replace").splitlines()
                 if line.strip()]
    except OSError:
        return f"(no log at {log})"
    return " | ".join(lines[-TAIL_LINES:]) or f"(nothing in {log})"
