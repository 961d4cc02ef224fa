"""A link change made while a lab runs (the scenario's `set_link`): the keys it takes and
their units, checked when the scenario is loaded so a typo fails before any lab exists."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from testbed.units import UnitError, parse_bandwidth, parse_duration, parse_ratio


def _queue(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UnitError(f"expected a queue length in packets (an integer >= 1), got {value!r}")
    return value


LINK_KEYS: dict[str, Callable[[object], Any]] = {
    "bandwidth": parse_bandwidth,  # both ways
    "up": parse_bandwidth,  # from the node toward its uplink's far end
    "down": parse_bandwidth,
    "loss": parse_ratio,
    "queue": _queue,
    "delay": parse_duration,  # each direction; needs sch_netem
    "jitter": parse_duration,
}
NEEDS_NETEM = ("delay", "jitter")


def check_link_change(change: dict[str, Any]) -> list[str]:
    """What is wrong with a `link:` mapping, one message per key (empty: fine)."""
    problems = []
    for key, value in change.items():
        parse = LINK_KEYS.get(key)
        if parse is None:
            problems.append(f"unknown key {key!r}; set_link takes: {', '.join(LINK_KEYS)}")
            continue
        try:
            parse(value)
        except UnitError as exc:
            problems.append(f"{key}: {exc}")
    if "jitter" in change and "delay" not in change:
        problems.append("jitter: needs delay: in the same change (netem varies a delay)")
    return problems


@dataclass(frozen=True)
class LinkChange:
    """A `link:` mapping in base units (bit/s, seconds, ratio, packets); None: unchanged."""

    bandwidth: int | None = None
    up: int | None = None
    down: int | None = None
    loss: float | None = None
    queue: int | None = None
    delay: float | None = None
    jitter: float | None = None


def parse_link_change(change: dict[str, Any]) -> LinkChange:
    """The change, parsed once when the scenario is loaded; raises UnitError naming
    what is wrong."""
    problems = check_link_change(change)
    if problems:
        raise UnitError("; ".join(problems))
    return LinkChange(**{key: LINK_KEYS[key](value) for key, value in change.items()})


def needs_netem(change: dict[str, Any]) -> bool:
    return any(key in change for key in NEEDS_NETEM)
