"""Expectation files -> checked Expectation objects, with every problem at file:line.

An expectation file is either a list of expectations or a mapping with an `expect:` list,
so a scenario file can carry its own expectations (its other keys are left to the
scenario loader). Everything that can be checked without the run is checked here, before
any pcap is read: unknown keys, keys that do not apply to the check, missing bounds,
flag names, windows, units. Selectors are checked against the run later (resolve.py).
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from testbed import units
from testbed.capture.model import (
    ALLOWED,
    CHECKS,
    REQUIRED,
    TCP_FLAGS,
    ExpectSpec,
    SelectorSpec,
)
from testbed.errors import ExpectationError, Problem
from testbed.topology.convert import Converter
from testbed.topology.source import SourceDict, SourceList, YamlSourceError, load_yaml

Selector = str | list[str] | SelectorSpec
FIELDS: tuple[str, ...] = tuple("from" if f.name == "from_" else f.name
                                for f in dataclasses.fields(ExpectSpec))


@dataclass
class Expectation:
    """One checked expectation, with where it was written (for every message about it)."""

    spec: ExpectSpec
    check: str
    name: str
    file: str
    line: int | None
    window: tuple[float, float | None] | None = None
    low: float | None = None
    high: float | None = None
    measure: str = "packets"
    flags_mask: int = 0
    flags_value: int = 0
    selectors: dict[str, Selector] = field(default_factory=dict)

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}" if self.line else self.file


def load_expectations(path: str | Path) -> list[Expectation]:
    """Every expectation in the file; raises ExpectationError listing all problems."""
    path = Path(path)
    try:
        raw = load_yaml(path)
    except YamlSourceError as exc:
        raise ExpectationError(exc.problems) from None
    loaded, problems = expectations_in(raw, str(path))
    if problems:
        raise ExpectationError(problems)
    return loaded


def expectations_in(raw: Any, source: str) -> tuple[list[Expectation], list[Problem]]:
    """The expectations of a loaded YAML document (a list, or a mapping such as a
    scenario with an `expect:` list), and every problem found in them."""
    items: Any = raw
    prefix = ""
    if isinstance(raw, SourceDict):
        if "expect" not in raw:
            return [], [Problem(
                "no `expect:` list here; an expectation file is a list of expectations or "
                "a mapping (e.g. a scenario) with an `expect:` list", source, raw.line)]
        items, prefix = raw["expect"], "expect"
    if not isinstance(items, SourceList):
        line = raw.line_of("expect") if isinstance(raw, SourceDict) else 1
        return [], [Problem("expected a list of expectations", source, line, prefix)]
    problems: list[Problem] = []
    loaded = []
    for index, item in enumerate(items):
        item_path = f"{prefix}[{index}]"
        expectation = _one(item, item_path, source, items.line_of(index), problems)
        if expectation is not None:
            loaded.append(expectation)
    if not items:
        problems.append(Problem("the expectation list is empty", source, items.line, prefix))
    return loaded, problems


def _one(item: Any, path: str, source: str, line: int | None,
         problems: list[Problem]) -> Expectation | None:
    if not isinstance(item, SourceDict):
        problems.append(Problem("an expectation is a mapping with check: and its keys",
                                source, line, path))
        return None
    before = len(problems)
    check = item.get("check")
    allowed = ALLOWED.get(check) if isinstance(check, str) else None
    known = (*allowed, "check", "name") if allowed else FIELDS
    renamed = SourceDict(file=item.file, line=item.line)  # `from` is a keyword: from_
    for key, value in item.items():
        if key in known:
            field_name = "from_" if key == "from" else key
            renamed[field_name] = value
            renamed.key_lines[field_name] = item.key_lines[key]
            continue
        what = f"check {check}" if allowed else "an expectation"
        if key in FIELDS:
            message = f"{key!r} does not apply to {what}"
        else:
            close = difflib.get_close_matches(key, known, n=1)
            message = f"unknown key {key!r}" + (f" (did you mean {close[0]!r}?)" if close
                                                else "")
        problems.append(Problem(f"{message}; {what} takes: {', '.join(known)}", source,
                                item.line_of(key), f"{path}.{key}"))
    convert = Converter()
    spec = convert.to_dataclass(ExpectSpec, renamed, path)
    problems.extend(convert.problems)
    if spec is None or spec.check is None:
        if spec is not None and "check" not in item:
            problems.append(Problem(f"check: is required; one of: {', '.join(CHECKS)}",
                                    source, line, path))
        return None

    def bad(message: str, key: str | None = None) -> None:
        at = item.line_of(key) if key else line
        problems.append(Problem(message, source, at, f"{path}.{key}" if key else path))

    for key in REQUIRED.get(spec.check, ()):
        if key not in item:
            bad(f"check {spec.check} needs {key}:")
    expectation = Expectation(spec, spec.check, spec.name or _default_name(spec, item),
                              source, line)
    for key in ("from", "to", "through"):
        if item.get(key) is not None:
            selector = _selector(item[key], item, key, f"{path}.{key}", problems)
            if selector is not None:
                expectation.selectors[key] = selector
    _packet_filter(expectation, item, bad)
    if "window" in item and spec.window is not None:
        expectation.window = _window(spec.window, bad)
    _bounds(expectation, item, bad)
    return expectation if len(problems) == before else None


def _default_name(spec: ExpectSpec, item: SourceDict) -> str:
    """A readable name for reports when none is given: check, selectors and filter."""
    parts: list[str] = [str(spec.check)]
    for key in ("from", "to", "through"):
        if item.get(key) is not None:
            parts.append(f"{key} {_show(item[key])}")
    if spec.proto:
        parts.append(spec.proto + (f"/{spec.port}" if spec.port is not None else ""))
    if spec.query:
        parts.append(spec.query)
    return " ".join(parts)


def _show(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_show(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(map(_show, value)) + "]"
    return str(value).lower() if isinstance(value, bool) else str(value)


def _selector(value: Any, item: SourceDict, key: str, path: str,
              problems: list[Problem]) -> Selector | None:
    if isinstance(value, str) and value:
        return value
    if isinstance(value, list) and value and all(isinstance(v, str) and v for v in value):
        return [str(v) for v in value]
    if isinstance(value, dict):
        convert = Converter()
        spec = convert.to_dataclass(SelectorSpec, value, path, item, key)
        problems.extend(convert.problems)
        if spec is not None and not convert.problems:
            if not any((spec.kind, spec.group, spec.labels, spec.names)):
                problems.append(Problem("an empty selector would match every node; give "
                                        "kind, group, labels or names", item.file,
                                        item.line_of(key), path))
                return None
            return spec
        return None
    problems.append(Problem(
        "a selector is a node name or glob (home*), a list of them, or a mapping of "
        f"kind/group/labels/names; got {value!r}", item.file, item.line_of(key), path))
    return None


def _packet_filter(expectation: Expectation, item: SourceDict, bad: Any) -> None:
    spec = expectation.spec
    if spec.proto == "icmp":
        for key in ("port", "src_port"):
            if key in item:
                bad("icmp has no ports; use proto: tcp or udp", key)
    if spec.flags is None:
        return
    words = spec.flags.replace(",", " ").split() if isinstance(spec.flags, str) \
        else [str(w) for w in spec.flags]
    for word in words:
        name = word.lstrip("!").upper()
        if name not in TCP_FLAGS:
            bad(f"unknown TCP flag {word!r}; known: {', '.join(TCP_FLAGS)} (prefix ! for "
                "must be clear)", "flags")
            continue
        expectation.flags_mask |= TCP_FLAGS[name]
        if not word.startswith("!"):
            expectation.flags_value |= TCP_FLAGS[name]
    if spec.proto not in (None, "tcp"):
        bad(f"flags apply to tcp, not {spec.proto}", "flags")
    spec.proto = "tcp"


def _seconds(value: Any) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return units.parse_duration(value)


def _window(values: list[Any], bad: Any) -> tuple[float, float | None] | None:
    if len(values) != 2 or values[0] is None:
        bad("window is [start, end]: seconds since the run's start (or durations such as "
            "30s); end may be null for the end of the capture", "window")
        return None
    try:
        start = _seconds(values[0])
        end = None if values[1] is None else _seconds(values[1])
    except units.UnitError as exc:
        bad(f"window: {exc}", "window")
        return None
    if end is not None and end <= start:
        bad(f"window ends ({end:g}s) before it starts ({start:g}s)", "window")
        return None
    return start, end


def _bound(value: Any, measure: str) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if measure == "bits/s":
        # tc's spelling (10Mbit), without tc's 8kbit floor: a bound may be tiny
        match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([a-zA-Z]+)", str(value).strip())
        scale = {"bit": 1, "kbit": 1e3, "mbit": 1e6, "gbit": 1e9}.get(
            match.group(2).lower() if match else "")
        if match is None or scale is None:
            return float(units.parse_bandwidth(value))  # raises, saying what to write
        return float(match.group(1)) * scale
    if measure == "bytes":
        return float(units.parse_size(value))
    raise units.UnitError(f"expected a number, got {value!r}")


def _bounds(expectation: Expectation, item: SourceDict, bad: Any) -> None:
    spec = expectation.spec
    expectation.measure = spec.measure or "packets"
    if spec.check == "peak_rate":
        expectation.measure = "packets/s"
    for key in ("min", "max"):
        value = getattr(spec, key)
        if value is None:
            continue
        try:
            number = _bound(value, expectation.measure if spec.check == "packets" else "")
        except units.UnitError as exc:
            bad(str(exc), key)
            continue
        setattr(expectation, "low" if key == "min" else "high", number)
    if spec.check in ("packets", "promql") and "min" not in item and "max" not in item:
        bad(f"check {spec.check} needs a bound: min:, max: or both")
    if spec.check == "peak_rate" and expectation.low is not None and expectation.low <= 0:
        bad("peak_rate min: must be above 0 (at least N packets/s)", "min")
    if expectation.low is not None and expectation.high is not None \
            and expectation.low > expectation.high:
        bad(f"min ({expectation.low:g}) is above max ({expectation.high:g})", "min")
    if spec.check == "no_packets":
        expectation.high = 0.0
    if spec.check == "via":
        expectation.high = 0.0
