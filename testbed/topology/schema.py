"""JSON Schema for topology files, generated from the model's dataclasses (never by hand)."""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, Literal, Union, get_args, get_origin

from testbed import units
from testbed.topology.model import TopologyFile

# as lenient as the loader (units are case-insensitive there)
_UNIT_PATTERNS = {
    "bandwidth": (r"^\s*\d+(\.\d+)?\s*([kKmMgG]?[bB][iI][tT])\s*$", units.BANDWIDTH_HELP),
    "duration": (r"^\s*\d+(\.\d+)?\s*([uUmM]?[sS]|[mMhH])\s*$", units.DURATION_HELP),
    "ratio": (r"^\s*\d+(\.\d+)?\s*%?\s*$", units.RATIO_HELP),
    "size": (r"^\s*\d+(\.\d+)?\s*([kKmMgG]?[bB])\s*$", units.SIZE_HELP),
    "cidr": (r"^\d+\.\d+\.\d+\.\d+/\d+$", "an IPv4 network, e.g. 10.0.0.0/8"),
    "ipif": (r"^\d+\.\d+\.\d+\.\d+/\d+$", "an IPv4 address with prefix, e.g. 198.18.0.2/24"),
}


# Any value may be written as ${param} or ${expression}; the loader substitutes it first.
PARAM = {"type": "string", "pattern": r"\$\{[^}]*\}",
         "description": "a ${param} or ${expression} from params:"}


def _or_param(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [*schema.get("anyOf", [schema]), PARAM]}


def topology_schema() -> dict[str, Any]:
    definitions: dict[str, Any] = {}
    root = _dataclass(TopologyFile, definitions)
    return {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "$id": "https://outage-testbed.invalid/schemas/topology.json",
        "title": "outage-testbed topology",
        **root,
        "definitions": definitions,
    }


def _dataclass(cls: type, definitions: dict[str, Any]) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    props = {}
    for f in dataclasses.fields(cls):
        props[f.name] = _field(hints[f.name], f.metadata, definitions)
        if f.metadata.get("doc"):
            props[f.name]["description"] = f.metadata["doc"]
    return {"type": "object", "description": (cls.__doc__ or "").strip(),
            "properties": props, "additionalProperties": False}


def _ref(cls: type, definitions: dict[str, Any]) -> dict[str, Any]:
    name = cls.__name__
    if name not in definitions:
        definitions[name] = {}  # placeholder against recursion
        definitions[name] = _dataclass(cls, definitions)
    return {"$ref": f"#/definitions/{name}"}


def _field(hint: Any, meta: typing.Mapping[str, Any], definitions: dict[str, Any]
           ) -> dict[str, Any]:
    origin, args = get_origin(hint), get_args(hint)
    if origin in (Union, types.UnionType):
        options = [a for a in args if a is not type(None)]
        if len(options) == 1:
            return _field(options[0], meta, definitions)
        return {"anyOf": [_field(o, meta, definitions) for o in options]}
    unit = meta.get("unit", "")
    if unit.endswith("-list") and origin is list:
        return {"type": "array", "items": _field(args[0], {"unit": unit[:-5]}, definitions)}
    if unit in _UNIT_PATTERNS:
        pattern, help_text = _UNIT_PATTERNS[unit]
        schema: dict[str, Any] = {"type": "string", "pattern": pattern,
                                  "description": help_text}
        if unit == "ratio":
            return _or_param({"anyOf": [schema, {"type": "number", "minimum": 0,
                                                 "maximum": 1}]})
        return _or_param(schema)
    if origin is Literal:
        return _or_param({"enum": list(args)})
    if origin is list:
        return {"type": "array", "items": _field(args[0], {}, definitions)}
    if origin is dict:
        return {"type": "object", "additionalProperties": _field(args[1], {}, definitions)}
    if dataclasses.is_dataclass(hint):
        return _ref(hint, definitions)  # type: ignore[arg-type]
    simple = {str: "string", bool: "boolean", int: "integer", float: "number"}
    if hint in simple:
        out: dict[str, Any] = {"type": simple[hint]}
        if "min" in meta:
            out["minimum"] = meta["min"]
        if "max" in meta:
            out["maximum"] = meta["max"]
        return out if hint is str else _or_param(out)
    return {}
