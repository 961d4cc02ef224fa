"""Selecting nodes for a step: by kind, group, labels or name, then a seeded sample."""

from __future__ import annotations

import random
from collections.abc import Iterable

from testbed.scenario.model import Selector
from testbed.topology.model import Node


def _as_list(value: str | list[str] | None) -> list[str] | None:
    return [value] if isinstance(value, str) else value


def matches(selector: Selector, node: Node) -> bool:
    kinds, groups = _as_list(selector.kind), _as_list(selector.group)
    if kinds and node.kind not in kinds:
        return False
    if groups and node.group not in groups:
        return False
    if selector.names and node.name not in selector.names:
        return False
    return all(node.labels.get(k) == v for k, v in (selector.labels or {}).items())


def select(selector: Selector, nodes: Iterable[Node], rng: random.Random) -> list[str]:
    """Matching node names, sampled by fraction/count with `rng`; sorted for stable logs."""
    found = sorted(n.name for n in nodes if matches(selector, n))
    if selector.count is not None:
        take = min(selector.count, len(found))
    elif selector.fraction is not None:
        take = round(selector.fraction * len(found))
    else:
        return found
    return sorted(rng.sample(found, take))
