"""The backend contract is the whole contract, and the layers lean one way only: what a
second backend's author (or a reader of docs/architecture.md) is promised."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

from testbed.backends.base import Backend
from testbed.backends.fake import FakeBackend
from testbed.backends.netns import NetnsBackend

PACKAGE = Path(__file__).resolve().parents[2] / "testbed"


def _imports_of(path: Path) -> set[str]:
    """The testbed modules a file imports, lazy imports inside functions included."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return {n for n in names if n.startswith("testbed")}


def _testbed_imports(folder: Path) -> dict[str, set[str]]:
    return {path.relative_to(PACKAGE.parent).as_posix(): _imports_of(path)
            for path in sorted(folder.rglob("*.py"))}


@pytest.mark.parametrize("upper", ["testbed.lab", "testbed.scenario", "testbed.cli"])
def test_backends_never_import_the_layers_above_them(upper: str) -> None:
    """lab/ imports backends/; the other way round would make the two lean on each other."""
    leaning = {path: sorted(n for n in names if n == upper or n.startswith(upper + "."))
               for path, names in _testbed_imports(PACKAGE / "backends").items()}
    assert {path: names for path, names in leaning.items() if names} == {}


def test_the_contract_module_is_a_leaf() -> None:
    assert _imports_of(PACKAGE / "backends" / "base.py") <= {
        "testbed.plan.model", "testbed.process.records", "testbed.progress"}


def _contract() -> list[str]:
    return [name for name, _ in inspect.getmembers(Backend, inspect.isfunction)
            if not name.startswith("_")]


@pytest.mark.parametrize("backend", [NetnsBackend, FakeBackend])
def test_every_backend_implements_all_of_it_with_the_same_parameters(backend: type) -> None:
    assert len(_contract()) >= 14
    for name in _contract():
        method = getattr(backend, name, None)
        assert callable(method), f"{backend.__name__} lacks {name}"
        wanted = list(inspect.signature(getattr(Backend, name)).parameters)
        assert list(inspect.signature(method).parameters) == wanted, name
    assert isinstance(backend.name, str)
