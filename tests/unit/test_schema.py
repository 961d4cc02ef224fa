"""`testbed schema`: a valid JSON Schema, generated from the model, that editors can use.

Needs the `jsonschema` package (test extra).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import subprocess
import sys
import typing
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from testbed.topology import model
from testbed.topology.schema import topology_schema

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    """Exactly what `testbed schema` prints."""
    result = subprocess.run([sys.executable, "-m", "testbed", "schema"], capture_output=True,
                            text=True, cwd=REPO, timeout=60, check=True)
    printed: dict[str, Any] = json.loads(result.stdout)
    assert printed == topology_schema()
    return printed


@pytest.fixture(scope="module")
def default_data() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((REPO / "topologies" / "skype-2007.yaml").read_text())
    return data


def errors(schema: dict[str, Any], data: object) -> list[tuple[list[object], str]]:
    validator = jsonschema.Draft7Validator(schema)
    return [(list(e.absolute_path), e.message) for e in validator.iter_errors(data)]


def test_schema_is_a_valid_draft7_json_schema(schema: dict[str, Any]) -> None:
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    jsonschema.Draft7Validator.check_schema(schema)
    for name, definition in schema["definitions"].items():
        assert definition["type"] == "object", name
        assert definition["additionalProperties"] is False, name


def test_schema_accepts_the_default_topology(schema: dict[str, Any],
                                             default_data: dict[str, Any]) -> None:
    assert errors(schema, default_data) == []


def test_schema_accepts_params_where_numbers_and_units_go(schema: dict[str, Any]) -> None:
    data = {"name": "p", "params": {"n": 3, "rate": "10Mbit"},
            "nodes": {"r": {"kind": "router"},
                      "h{n}": {"count": "${n}", "kind": "host",
                               "uplink": {"to": "r", "bandwidth": "${rate}",
                                          "loss": "${n / 100}", "queue": "${n * 10}"}}}}
    assert errors(schema, data) == []


def test_schema_rejects_a_node_with_an_unknown_key(schema: dict[str, Any],
                                                   default_data: dict[str, Any]) -> None:
    data = copy.deepcopy(default_data)
    data["nodes"]["login"]["colour"] = "red"
    assert errors(schema, data) == [
        (["nodes", "login"],
         "Additional properties are not allowed ('colour' was unexpected)")]


@pytest.mark.parametrize(("field", "value", "path"), [
    ("bandwidth", "10Mbps", ["nodes", "login", "uplink", "bandwidth"]),
    ("queue", 1, ["nodes", "login", "uplink", "queue"]),
    ("delay", "20", ["nodes", "login", "uplink", "delay"]),
])
def test_schema_rejects_bad_link_values(schema: dict[str, Any], default_data: dict[str, Any],
                                        field: str, value: object, path: list[object]) -> None:
    data = copy.deepcopy(default_data)
    data["nodes"]["login"]["uplink"][field] = value
    assert [p for p, _ in errors(schema, data)] == [path]


def test_schema_rejects_an_unknown_nat_type(schema: dict[str, Any],
                                            default_data: dict[str, Any]) -> None:
    data = copy.deepcopy(default_data)
    data["kinds"]["nat"]["nat"]["type"] = "cone"
    assert [p for p, _ in errors(schema, data)] == [["kinds", "nat", "nat", "type"]]


def _dataclasses_of(cls: type) -> set[type]:
    """`cls` and every dataclass its fields mention, recursively."""
    found = {cls}
    for hint in typing.get_type_hints(cls).values():
        stack = [hint]
        while stack:
            current = stack.pop()
            stack.extend(typing.get_args(current))
            if dataclasses.is_dataclass(current) and current not in found:
                found |= _dataclasses_of(current)  # type: ignore[arg-type]
    return found


def test_every_nodespec_field_is_in_the_schema(schema: dict[str, Any]) -> None:
    node = schema["definitions"]["NodeSpec"]["properties"]
    assert set(node) == {f.name for f in dataclasses.fields(model.NodeSpec)}
    assert schema["properties"]["nodes"]["additionalProperties"] == \
        {"$ref": "#/definitions/NodeSpec"}


def test_every_model_dataclass_and_field_is_in_the_schema(schema: dict[str, Any]) -> None:
    classes = _dataclasses_of(model.TopologyFile) - {model.TopologyFile}
    assert {c.__name__ for c in classes} == set(schema["definitions"])
    assert {"NodeSpec", "LinkSpec", "TopLink", "NatSettings", "FirewallSettings",
            "ProxySettings", "Addressing", "OverlaySettings"} <= set(schema["definitions"])
    for cls in classes:
        properties = schema["definitions"][cls.__name__]["properties"]
        assert set(properties) == {f.name for f in dataclasses.fields(cls)}, cls.__name__
        for f in dataclasses.fields(cls):
            if "doc" in f.metadata:
                assert properties[f.name]["description"] == f.metadata["doc"]
    assert set(schema["properties"]) == {f.name for f in dataclasses.fields(model.TopologyFile)}


def test_count_range_matches_the_loader(schema: dict[str, Any]) -> None:
    count = schema["definitions"]["NodeSpec"]["properties"]["count"]
    number = next(o for o in count["anyOf"] if o.get("type") == "integer")
    assert (number["minimum"], number["maximum"]) == (0, model.MAX_COUNT)


def test_schema_output_file(tmp_path: Path, schema: dict[str, Any]) -> None:
    out = tmp_path / "topology.schema.json"
    subprocess.run([sys.executable, "-m", "testbed", "schema", "-o", str(out)], cwd=REPO,
                   check=True, timeout=60, capture_output=True)
    assert json.loads(out.read_text()) == schema


def test_every_kind_section_of_the_model_is_owned_by_a_kind() -> None:
    """The sections a node may carry are the kinds' (nodes/*.py `sections`): a section the
    model has and no kind owns would be accepted on every node and ignored; one a kind
    claims and the model lacks could never be written. The schema names every kind."""
    from testbed.nodes.registry import default_registry

    registry = default_registry()
    common = {"kind", "group", "count", "vary", "labels", "uplink", "links", "held_back"}
    node_fields = {f.name for f in dataclasses.fields(model.NodeSpec)} - common
    assert node_fields == set(registry.sections())
    assert set(registry.sections()) <= {f.name for f in dataclasses.fields(model.Node)}
    described = topology_schema()["definitions"]["NodeSpec"]["properties"]["kind"]
    listed = described["description"].split(": ", 1)[1].split(", ")
    assert sorted(listed) == registry.names()
