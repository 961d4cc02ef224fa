"""YAML loading that remembers where every key came from, for file:line errors.

Mappings become SourceDict and sequences SourceList: ordinary dict/list subclasses that
also carry the file and the line of each entry. Values merged from elsewhere (inheritance)
keep the line where they were written.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from testbed.errors import Problem


class SourceDict(dict[str, Any]):
    """A YAML mapping with the line of each key (1-based) and of the mapping itself."""

    def __init__(self, *args: Any, file: str | None = None, line: int | None = None) -> None:
        super().__init__(*args)
        self.file = file
        self.line = line
        self.key_lines: dict[str, int] = {}

    def line_of(self, key: str) -> int | None:
        return self.key_lines.get(key, self.line)


class SourceList(list[Any]):
    """A YAML sequence with the line of each item."""

    def __init__(self, *args: Any, file: str | None = None, line: int | None = None) -> None:
        super().__init__(*args)
        self.file = file
        self.line = line
        self.item_lines: list[int | None] = []

    def line_of(self, index: int) -> int | None:
        if 0 <= index < len(self.item_lines):
            return self.item_lines[index]
        return self.line


def where(container: object, key: str | int | None = None) -> tuple[str | None, int | None]:
    """(file, line) of a key in a SourceDict/SourceList, or of the container itself."""
    file = getattr(container, "file", None)
    if isinstance(container, SourceDict):
        return file, container.line_of(key) if isinstance(key, str) else container.line
    if isinstance(container, SourceList):
        return file, container.line_of(key) if isinstance(key, int) else container.line
    return file, None


class YamlSourceError(Exception):
    def __init__(self, problem: Problem) -> None:
        super().__init__(str(problem))
        self.problem = problem


def _make_loader(file: str) -> type[yaml.SafeLoader]:
    class Loader(yaml.SafeLoader):
        pass

    def construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> SourceDict:
        loader.flatten_mapping(node)
        result = SourceDict(file=file, line=node.start_mark.line + 1)
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if not isinstance(key, str):
                key = str(key)
            if key in result:
                raise YamlSourceError(
                    Problem(
                        f"duplicate key {key!r} (first at line {result.key_lines[key]})",
                        file,
                        line,
                    )
                )
            result[key] = loader.construct_object(value_node, deep=True)
            result.key_lines[key] = line
        return result

    def construct_sequence(loader: yaml.SafeLoader, node: yaml.SequenceNode) -> SourceList:
        result = SourceList(file=file, line=node.start_mark.line + 1)
        for item in node.value:
            result.append(loader.construct_object(item, deep=True))
            result.item_lines.append(item.start_mark.line + 1)
        return result

    Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, construct_mapping)
    Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, construct_sequence)
    return Loader


def load_yaml(path: Path) -> Any:
    """Parse a YAML file into SourceDict/SourceList trees; raise YamlSourceError with file:line."""
    name = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise YamlSourceError(Problem(f"cannot read file: {exc.strerror}", name)) from exc
    return load_yaml_text(text, name)


def load_yaml_text(text: str, name: str) -> Any:
    try:
        return yaml.load(text, Loader=_make_loader(name))  # noqa: S506 - SafeLoader subclass
    except YamlSourceError:
        raise
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        raise YamlSourceError(Problem(f"invalid YAML: {exc.problem}", name, line)) from exc
    except yaml.YAMLError as exc:
        raise YamlSourceError(Problem(f"invalid YAML: {exc}", name)) from exc
