"""Type-driven conversion of YAML data into the model's dataclasses.

Walks the dataclass type hints, so the model stays the only description of the format.
Every mismatch becomes a Problem with file:line, the key path and what is allowed.
"""

from __future__ import annotations

import dataclasses
import difflib
import ipaddress
import types
import typing
from collections.abc import Callable
from typing import Any, Literal, TypeVar, Union, get_args, get_origin

from testbed import units
from testbed.errors import Problem
from testbed.topology.source import where

T = TypeVar("T")


def _cidr(text: object) -> str:
    if not isinstance(text, str):
        raise units.UnitError(f"expected a network in CIDR form such as 10.0.0.0/8, got {text!r}")
    try:
        return str(ipaddress.ip_network(text, strict=True))
    except ValueError as exc:
        raise units.UnitError(f"expected a network in CIDR form such as 10.0.0.0/8: {exc}") from exc


def _ipif(text: object) -> str:
    if not isinstance(text, str) or "/" not in text:
        raise units.UnitError(
            f"expected an interface address with prefix such as 198.18.0.2/24, got {text!r}"
        )
    try:
        iface = ipaddress.ip_interface(text)
    except ValueError as exc:
        raise units.UnitError(f"expected an address such as 198.18.0.2/24: {exc}") from exc
    if iface.version != 4:
        raise units.UnitError("only IPv4 addresses are supported for now")
    return str(iface)


UNIT_PARSERS: dict[str, Callable[[object], Any]] = {
    "bandwidth": units.parse_bandwidth,
    "duration": units.parse_duration,
    "ratio": units.parse_ratio,
    "size": units.parse_size,
    "cidr": _cidr,
    "ipif": _ipif,
}

_TYPE_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "true or false"}


class Converter:
    """Collects problems while converting; never raises on bad input."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def problem(self, message: str, container: object, key: str | int | None, path: str) -> None:
        file, line = where(container, key)
        self.problems.append(Problem(message, file, line, path))

    def to_dataclass(self, cls: type[T], data: object, path: str,
                     container: object = None, key: str | int | None = None) -> T | None:
        if not isinstance(data, dict):
            self.problem(f"expected a mapping with keys {_keys(cls)}, got {_show(data)}",
                         container, key, path)
            return None
        hints = _type_hints(cls)
        fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        values: dict[str, Any] = {}
        for name, value in data.items():
            sub = f"{path}.{name}" if path else name
            if name not in fields:
                close = difflib.get_close_matches(name, list(fields), n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                self.problem(f"unknown key {name!r}{hint}; allowed: {_keys(cls)}", data, name, sub)
                continue
            converted = self.value(hints[name], value, sub, fields[name].metadata, data, name)
            if converted is not _INVALID:
                values[name] = converted
        return cls(**values)

    def value(self, hint: Any, value: object, path: str, meta: typing.Mapping[str, Any],
              container: object, key: str | int) -> Any:
        origin = get_origin(hint)
        args = get_args(hint)
        if origin in (Union, types.UnionType):
            if value is None and type(None) in args:
                return None
            options = [a for a in args if a is not type(None)]
            if len(options) == 1:
                return self.value(options[0], value, path, meta, container, key)
            return self._union(options, value, path, meta, container, key)
        if value is None:
            self.problem("a value is required here", container, key, path)
            return _INVALID
        unit = meta.get("unit")
        if unit and unit in UNIT_PARSERS and origin is not list:
            try:
                return UNIT_PARSERS[unit](value)
            except units.UnitError as exc:
                self.problem(str(exc), container, key, path)
                return _INVALID
        if origin is Literal:
            if isinstance(value, int) and not isinstance(value, bool) and str(value) in args:
                value = str(value)  # policy: 2007 (YAML reads it as a number)
            if value not in args:
                self.problem(f"{value!r} is not allowed; choose one of: "
                             + ", ".join(map(str, args)), container, key, path)
                return _INVALID
            return value
        if origin is list:
            return self._list(args[0], value, path, meta, container, key)
        if origin is dict:
            return self._dict(args[1], value, path, container, key)
        if dataclasses.is_dataclass(hint):
            result = self.to_dataclass(hint, value, path, container, key)  # type: ignore[arg-type]
            return _INVALID if result is None else result
        if hint is Any:
            return value
        return self._scalar(hint, value, path, meta, container, key)

    def _scalar(self, hint: type, value: object, path: str, meta: typing.Mapping[str, Any],
                container: object, key: str | int) -> Any:
        ok = isinstance(value, hint) and not (hint is not bool and isinstance(value, bool))
        if hint is float and isinstance(value, int) and not isinstance(value, bool):
            ok, value = True, float(value)
        if not ok:
            self.problem(f"expected {_TYPE_NAMES.get(hint, hint.__name__)}, got {_show(value)}",
                         container, key, path)
            return _INVALID
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            low, high = meta.get("min"), meta.get("max")
            if (low is not None and value < low) or (high is not None and value > high):
                self.problem(f"{value} is out of range; allowed: {low} to {high}",
                             container, key, path)
                return _INVALID
        return value

    def _union(self, options: list[Any], value: object, path: str,
               meta: typing.Mapping[str, Any], container: object, key: str | int) -> Any:
        for option in options:
            trial = Converter()
            result = trial.value(option, value, path, meta, container, key)
            if not trial.problems:
                return result
        names = " or ".join(_describe(o) for o in options)
        self.problem(f"expected {names}, got {_show(value)}", container, key, path)
        return _INVALID

    def _list(self, item: Any, value: object, path: str, meta: typing.Mapping[str, Any],
              container: object, key: str | int) -> Any:
        if not isinstance(value, list):
            self.problem(f"expected a list, got {_show(value)}", container, key, path)
            return _INVALID
        unit = meta.get("unit", "")
        item_meta = {"unit": unit.removesuffix("-list")} if unit.endswith("-list") else {}
        out = [self.value(item, v, f"{path}[{i}]", item_meta, value, i)
               for i, v in enumerate(value)]
        return _INVALID if _INVALID in out else out

    def _dict(self, item: Any, value: object, path: str, container: object,
              key: str | int) -> Any:
        if not isinstance(value, dict):
            self.problem(f"expected a mapping, got {_show(value)}", container, key, path)
            return _INVALID
        out = {str(k): self.value(item, v, f"{path}.{k}", {}, value, str(k))
               for k, v in value.items()}
        return _INVALID if _INVALID in out.values() else out


_HINTS: dict[type, dict[str, Any]] = {}


def _type_hints(cls: type) -> dict[str, Any]:
    """Resolved once per class: get_type_hints is slow and runs for every node otherwise."""
    hints = _HINTS.get(cls)
    if hints is None:
        hints = _HINTS[cls] = typing.get_type_hints(cls)
    return hints


class _Invalid:
    def __repr__(self) -> str:
        return "<invalid>"


_INVALID: Any = _Invalid()


def _keys(cls: type) -> str:
    return ", ".join(f.name for f in dataclasses.fields(cls))


def _describe(hint: Any) -> str:
    origin = get_origin(hint)
    if origin is list:
        return "a list"
    if origin is dict or dataclasses.is_dataclass(hint):
        return "a mapping"
    return _TYPE_NAMES.get(hint, getattr(hint, "__name__", str(hint)))


def _show(value: object) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"{type(value).__name__} {value!r}"
