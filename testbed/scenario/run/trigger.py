"""When the trigger happened: from the first host going down to the last, as planned
(the schedule) or as it actually went (the step log; wait_until may have shifted it)."""

from __future__ import annotations

import json
from pathlib import Path

from testbed.metrics.outcome import Trigger
from testbed.scenario.actions import Event

DOWN_ACTIONS = ("host_down", "kill")


def trigger_of(events: list[Event]) -> Trigger | None:
    downs = [e.time for e in events if e.action in DOWN_ACTIONS]
    return Trigger(min(downs), max(downs)) if downs else None


def trigger_from_log(path: Path) -> Trigger | None:
    if not path.exists():
        return None
    downs = []
    for line in path.read_text().splitlines():
        entry = json.loads(line)
        if entry.get("action") in DOWN_ACTIONS and "actual" in entry:
            downs.append(float(entry["actual"]))
    return Trigger(round(min(downs), 3), round(max(downs), 3)) if downs else None
