"""A run's results directory, and expectations bound to it: selectors -> addresses,
`capture:` -> pcaps from captures/index.json, windows -> absolute times.

Anything that does not bind (a selector that matches no node, a capture that is not in
the index, a pcap that is missing) raises BindError; the caller turns it into an error
verdict that names the expectation and its file:line, never a silent pass.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from testbed.capture.expectations import Expectation, Selector
from testbed.capture.model import SelectorSpec
from testbed.errors import InputError, Problem


class BindError(Exception):
    """An expectation does not fit the run (its message says what to fix)."""


@dataclass(frozen=True)
class CaptureInfo:
    """One entry of captures/index.json, with its pcap's path resolved."""

    name: str
    node: str
    interface: str
    path: Path
    file: str  # as written in the index: relative to the run directory
    filter: str = ""
    packets: int | None = None
    dropped: int | None = None
    started_unix: float | None = None
    stopped_unix: float | None = None


@dataclass
class RunData:
    dir: Path
    info: dict[str, Any]
    nodes: dict[str, dict[str, Any]]
    captures: list[CaptureInfo]
    index_note: str = ""  # why there are no captures, when there are none

    @property
    def started_unix(self) -> float | None:
        value = self.info.get("started_unix")
        return float(value) if value else None

    def owners(self, prefer: Iterable[str] = ()) -> dict[bytes, str]:
        """Packed IPv4 address -> node name, to name the ends of packets. Private
        addresses repeat (every home LAN is alike): one the captured node owns is named
        after it; one several other nodes share says so instead of picking one."""
        owners: dict[bytes, list[str]] = {}
        for name in self.nodes:
            for address in node_addresses(self.nodes[name]):
                owners.setdefault(ipaddress.IPv4Address(address).packed, []).append(name)
        preferred = set(prefer)
        named = {}
        for packed, names in owners.items():
            mine = [n for n in names if n in preferred]
            if mine or len(names) == 1:
                named[packed] = (mine or names)[0]
            else:
                named[packed] = f"{names[0]} or {len(names) - 1} other nodes"
        return named


def node_addresses(node: dict[str, Any]) -> list[str]:
    return [str(i["address"]).split("/")[0] for i in node.get("interfaces") or []
            if i.get("address")]


def _json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text())
    except OSError as exc:
        raise InputError([Problem(f"cannot read {what}: {exc.strerror}", str(path))],
                         what="run") from None
    except json.JSONDecodeError as exc:
        raise InputError([Problem(f"{what} is not valid JSON: {exc.msg}", str(path),
                                  exc.lineno)], what="run") from None


def load_run(run_dir: str | Path) -> RunData:
    """A results/<run-id>/ directory: run.json is required, lab.json and captures are
    read when present (expectations that need them report their absence)."""
    run_dir = Path(run_dir)
    if not (run_dir / "run.json").is_file():
        raise InputError([Problem("not a run directory (no run.json); give a results/"
                                  "<run-id> directory written by `testbed run`",
                                  str(run_dir))], what="run")
    info = _json(run_dir / "run.json", "run.json")
    lab = _json(run_dir / "lab.json", "lab.json") if (run_dir / "lab.json").is_file() else {}
    index_path = run_dir / "captures" / "index.json"
    if index_path.is_file():
        entries = _json(index_path, "captures/index.json")
    else:  # an interrupted run: the pcaps on disk are the index
        from testbed.capture.tcpdump import index_from_disk

        entries = index_from_disk(run_dir / "captures", run_dir) \
            if (run_dir / "captures").is_dir() else []
        if not entries:
            return RunData(run_dir, info, lab.get("nodes") or {}, [],
                           "the run has no captures/index.json and no pcaps in captures/ "
                           "(no capture was declared, or none started)")
    captures = []
    for entry in entries if isinstance(entries, list) else []:
        captures.append(CaptureInfo(
            name=str(entry["name"]), node=str(entry.get("node", "")),
            interface=str(entry.get("interface", "")), path=run_dir / str(entry["file"]),
            file=str(entry["file"]), filter=str(entry.get("filter") or ""),
            packets=entry.get("packets"), dropped=entry.get("dropped"),
            started_unix=entry.get("started_unix"), stopped_unix=entry.get("stopped_unix")))
    note = "" if captures else "captures/index.json lists no capture"
    return RunData(run_dir, info, lab.get("nodes") or {}, captures, note)


@dataclass
class Bound:
    """An expectation bound to one run: what to match, in which pcaps, when."""

    expectation: Expectation
    captures: list[CaptureInfo]
    origin: float  # the run's t=0 (unix time); times in reports are relative to it
    start: float  # window, unix time; -inf/+inf when open
    end: float
    addresses: dict[str, frozenset[bytes]] = field(default_factory=dict)  # from/to/through
    nodes: dict[str, list[str]] = field(default_factory=dict)

    def window_text(self) -> str:
        if math.isinf(self.start) and math.isinf(self.end):
            return "whole capture"
        low = "start" if math.isinf(self.start) else f"{self.start - self.origin:g}s"
        high = "end" if math.isinf(self.end) else f"{self.end - self.origin:g}s"
        return f"t={low}..{high}"

    def span(self) -> float | None:
        """Seconds the window covers, for average rates: the window, else the captures'
        own start/stop times from the index."""
        start, end = self.start, self.end
        if math.isinf(start):
            times = [c.started_unix for c in self.captures if c.started_unix]
            start = min(times) if times else start
        if math.isinf(end):
            times = [c.stopped_unix for c in self.captures if c.stopped_unix]
            end = max(times) if times else end
        return None if math.isinf(start) or math.isinf(end) else max(0.0, end - start)


def bind(expectation: Expectation, run: RunData, check_files: bool = True) -> Bound:
    origin = run.started_unix
    window = expectation.window
    if window is not None and origin is None:
        raise BindError("run.json has no started_unix (the scenario never started), so the "
                        "window cannot be placed")
    captures = [] if expectation.check == "promql" else _captures(expectation, run,
                                                                  check_files)
    if origin is None:
        starts = [c.started_unix for c in captures if c.started_unix]
        origin = min(starts) if starts else 0.0
    start, end = -math.inf, math.inf
    if window is not None:
        start = origin + window[0]
        end = math.inf if window[1] is None else origin + window[1]
    bound = Bound(expectation, captures, origin, start, end)
    for key, selector in expectation.selectors.items():
        names, addresses = _select(selector, run, key)
        bound.nodes[key], bound.addresses[key] = names, addresses
    return bound


def _select(selector: Selector, run: RunData, key: str) -> tuple[list[str], frozenset[bytes]]:
    if not run.nodes:
        raise BindError(f"{key}: the run has no lab.json, so node selectors cannot be resolved")
    names: list[str] = []
    packed: set[bytes] = set()
    items = selector if isinstance(selector, list) else [selector]
    for item in items:
        if isinstance(item, SelectorSpec):
            found = [n for n, node in run.nodes.items() if _matches(item, n, node)]
        else:
            try:
                packed.add(ipaddress.IPv4Address(item).packed)
                continue
            except ValueError:
                found = [n for n in run.nodes if fnmatch.fnmatchcase(n, item)]
        if not found:
            raise BindError(f"{key}: {_describe(item)} matches no node of the run's lab "
                            f"({_sample(run.nodes)})")
        names += [n for n in found if n not in names]
    for name in names:
        packed.update(ipaddress.IPv4Address(a).packed for a in node_addresses(run.nodes[name]))
    if not packed:
        raise BindError(f"{key}: {', '.join(names)} have no addresses (switches carry no "
                        "traffic of their own); select the hosts behind them")
    return names, frozenset(packed)


def _matches(spec: SelectorSpec, name: str, node: dict[str, Any]) -> bool:
    kinds = [spec.kind] if isinstance(spec.kind, str) else spec.kind
    groups = [spec.group] if isinstance(spec.group, str) else spec.group
    if kinds and node.get("kind") not in kinds:
        return False
    if groups and node.get("group") not in groups:
        return False
    if spec.names and not any(fnmatch.fnmatchcase(name, p) for p in spec.names):
        return False
    labels = node.get("labels") or {}
    return all(labels.get(k) == v for k, v in (spec.labels or {}).items())


def _describe(item: str | SelectorSpec) -> str:
    if isinstance(item, str):
        return repr(item)
    given = {k: v for k, v in vars(item).items() if v}
    return "{" + ", ".join(f"{k}: {v}" for k, v in given.items()) + "}"


def _sample(nodes: dict[str, Any]) -> str:
    names = sorted(nodes)
    kinds = sorted({str(n.get("kind")) for n in nodes.values()})
    more = f", ... {len(names) - 10} more" if len(names) > 10 else ""
    return f"nodes: {', '.join(names[:10])}{more}; kinds: {', '.join(kinds)}"


def precheck(expectations: Sequence[Expectation], nodes: dict[str, dict[str, Any]],
             captures: Sequence[tuple[str, str, str]]) -> list[Problem]:
    """Before a run starts: every selector against the planned lab's nodes (lab.json's
    shape) and every `capture:` against the declared (name, node, interface) captures, so
    a typo fails at file:line before a lab is built rather than as an ERROR verdict after
    the run."""
    declared = [CaptureInfo(name, node, interface, Path(f"captures/{name}.pcap"),
                            f"captures/{name}.pcap") for name, node, interface in captures]
    run = RunData(Path("."), {"started_unix": 1.0}, nodes, declared,
                  "no capture is declared (add captures: to the scenario, or capture: to "
                  "a link of the topology)")
    problems = []
    for expectation in expectations:
        try:
            bind(expectation, run, check_files=False)
        except BindError as exc:
            problems.append(Problem(f"{expectation.name}: {exc}", expectation.file,
                                    expectation.line))
    return problems


def _captures(expectation: Expectation, run: RunData, check_files: bool = True
              ) -> list[CaptureInfo]:
    refs = expectation.spec.capture
    if refs is None:
        chosen = _default_captures(expectation, run)
    else:
        chosen = []
        for ref in [refs] if isinstance(refs, str) else refs:
            chosen += [c for c in _lookup(ref, run) if c not in chosen]
    if expectation.check == "link_rate" and len(chosen) != 1:
        raise BindError(f"link_rate reads one capture (one link); got {len(chosen)}: "
                        f"{', '.join(c.name for c in chosen)}")
    for capture in chosen if check_files else ():
        if not capture.path.is_file():
            raise BindError(f"pcap {capture.file} of capture {capture.name!r} is missing "
                            f"(listed in captures/index.json, not in {run.dir})")
    return chosen


def _default_captures(expectation: Expectation, run: RunData) -> list[CaptureInfo]:
    if not run.captures:
        raise BindError(run.index_note)
    if expectation.check == "via":
        sources = set(_select(expectation.selectors["from"], run, "from")[0]) \
            if "from" in expectation.selectors else set()
        mine = [c for c in run.captures if c.node in sources]
        if mine or len(run.captures) == 1:
            return mine or list(run.captures)
        raise BindError(f"no capture on any node of from: ({', '.join(sorted(sources))}) "
                        f"and the run has {len(run.captures)}; name one with capture:")
    if len(run.captures) == 1:
        return list(run.captures)
    raise BindError(f"the run has {len(run.captures)} captures ("
                    f"{', '.join(c.name for c in run.captures)}); say which with capture:")


def _lookup(ref: str, run: RunData) -> list[CaptureInfo]:
    by_name = [c for c in run.captures if c.name == ref]
    if by_name:
        return by_name
    node, _, interface = ref.partition(":")
    found = [c for c in run.captures
             if c.node == node and (not interface or c.interface == interface)]
    if len(found) > 1 and not interface:
        raise BindError(f"capture: {ref!r}: node {node} has {len(found)} captures ("
                        f"{', '.join(c.name for c in found)}); name one, or use NODE:IFACE")
    if not found:
        known = ", ".join(f"{c.name} ({c.node}:{c.interface})" for c in run.captures)
        raise BindError(f"capture: {ref!r} is not in captures/index.json ("
                        f"{known or run.index_note})")
    return found
