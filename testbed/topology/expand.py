"""Raw-YAML transformations before typing: params, inheritance, replicated nodes.

All work on SourceDict/SourceList so that every value keeps the line it was written on.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from typing import Any

from testbed.errors import Problem
from testbed.topology.expressions import (
    ExpressionError,
    has_template,
    render_template,
    substitute_params,
)
from testbed.topology.model import MAX_COUNT
from testbed.topology.source import SourceDict, SourceList, where

Report = Callable[[Problem], None]


def substitute(data: Any, params: Mapping[str, Any], report: Report,
               container: object = None, key: str | int | None = None, path: str = "") -> Any:
    """Replace ${expr} everywhere in strings, keeping SourceDict/SourceList positions."""
    if isinstance(data, SourceDict):
        out = SourceDict(file=data.file, line=data.line)
        for k, v in data.items():
            out[k] = substitute(v, params, report, data, k, f"{path}.{k}" if path else k)
            out.key_lines[k] = data.key_lines.get(k, data.line or 0)
        return out
    if isinstance(data, SourceList):
        out_list = SourceList(file=data.file, line=data.line)
        for i, v in enumerate(data):
            out_list.append(substitute(v, params, report, data, i, f"{path}[{i}]"))
        out_list.item_lines = list(data.item_lines)
        return out_list
    if isinstance(data, str) and "${" in data:
        try:
            return substitute_params(data, params)
        except ExpressionError as exc:
            file, line = where(container, key)
            report(Problem(f"cannot substitute {data!r}: {exc} (parameters are declared "
                           "under params:)", file, line, path))
    return data


def merge(base: Any, over: Any) -> Any:
    """Deep merge: mappings merge key by key, anything else is replaced by `over`."""
    if isinstance(base, SourceDict) and isinstance(over, SourceDict):
        out = SourceDict(file=over.file, line=over.line)
        for src in (base, over):
            for k, v in src.items():
                out[k] = merge(out[k], v) if k in out else copy.copy(v)
                out.key_lines[k] = src.key_lines.get(k, src.line or 0)
        return out
    return over


def expand_counted(nodes: SourceDict, report: Report) -> SourceDict:
    """`home{n:03}: {count: 300, ...}` becomes home001..home300 with n rendered in targets."""
    out = SourceDict(file=nodes.file, line=nodes.line)
    origins: dict[str, str] = {}  # node name -> where it comes from, for duplicate reports
    for name, body in nodes.items():
        line = nodes.key_lines.get(name)
        count = body.get("count") if isinstance(body, dict) else None
        if count is None:
            if has_template(name):
                report(Problem(f"node name {name!r} has a {{...}} template but no count:",
                               nodes.file, line, f"nodes.{name}"))
                continue
            _add(out, origins, name, body, line, report, nodes.file, f"nodes.{name}",
                 f"{name!r} at line {line}")
            continue
        path = f"nodes.{name}.count"
        if isinstance(count, bool) or not isinstance(count, int) or not 0 <= count <= MAX_COUNT:
            report(Problem(f"count must be a whole number from 0 to {MAX_COUNT}, got {count!r}",
                           nodes.file, body.line_of("count"), path))
            continue
        if not has_template(name):
            report(Problem("a counted node's name needs {n}, e.g. 'home{n:03}'",
                           nodes.file, line, f"nodes.{name}"))
            continue
        for n in range(1, count + 1):
            try:
                rendered = render_template(name, {"n": n})
                replica = _render_targets(body, n)
                replica = _apply_vary(replica, n, f"nodes.{name}", report)
            except ExpressionError as exc:
                report(Problem(str(exc), nodes.file, line, f"nodes.{name}"))
                break
            replica["index"] = n
            replica.key_lines["index"] = line or 0
            _add(out, origins, rendered, replica, line, report, nodes.file, f"nodes.{name}",
                 f"{name!r} with n={n} at line {line}")
    return out


def _add(out: SourceDict, origins: dict[str, str], name: str, body: Any, line: int | None,
         report: Report, file: str | None, path: str, origin: str) -> None:
    if name in out:
        report(Problem(f"duplicate node name {name!r}: made by {origin} and by "
                       f"{origins[name]}; node names must be unique", file, line, path))
        return
    out[name] = body
    out.key_lines[name] = line or 0
    origins[name] = origin


def _render_targets(body: SourceDict, n: int) -> SourceDict:
    replica = copy.deepcopy(body)
    replica.pop("count", None)
    uplink = replica.get("uplink")
    if isinstance(uplink, dict) and isinstance(uplink.get("to"), str):
        uplink["to"] = render_template(uplink["to"], {"n": n})
    for link in replica.get("links") or []:
        if isinstance(link, dict) and isinstance(link.get("to"), str):
            link["to"] = render_template(link["to"], {"n": n})
    return replica


def _apply_vary(body: SourceDict, n: int, path: str, report: Report) -> SourceDict:
    vary = body.pop("vary", None)
    if vary is None:
        return body
    if not isinstance(vary, dict):
        report(Problem("vary: expected a mapping of field path -> list of values",
                       body.file, body.line, f"{path}.vary"))
        return body
    for field_path, values in vary.items():
        line = vary.line_of(field_path) if isinstance(vary, SourceDict) else None
        if not isinstance(values, list) or not values:
            report(Problem("expected a non-empty list of values to cycle through",
                           body.file, line, f"{path}.vary.{field_path}"))
            continue
        target = body
        parts = field_path.split(".")
        for part in parts[:-1]:
            nested = target.get(part)
            if not isinstance(nested, SourceDict):
                nested = SourceDict(file=body.file, line=line)
                target[part] = nested
                target.key_lines[part] = line or 0
            target = nested
        target[parts[-1]] = values[(n - 1) % len(values)]
        target.key_lines[parts[-1]] = line or 0
    return body
