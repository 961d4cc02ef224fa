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


def key_lines(data: object, prefix: str = "") -> dict[str, int]:
    """Line of every key path below `data`, e.g. {'nodes.pc.uplink.to': 7, 'links[0]': 12}."""
    lines: dict[str, int] = {}
    if isinstance(data, SourceDict):
        for key, value in data.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            line = data.key_lines.get(key)
            if line:
                lines[path] = line
            lines.update(key_lines(value, path))
    elif isinstance(data, SourceList):
        for index, value in enumerate(data):
            path = f"{prefix}[{index}]"
            line = data.line_of(index)
            if line:
                lines[path] = line
            lines.update(key_lines(value, path))
    return lines


class YamlSourceError(Exception):
    def __init__(self, problems: Problem | list[Problem]) -> None:
        self.problems = problems if isinstance(problems, list) else [problems]
        super().__init__("\n".join(map(str, self.problems)))
        self.problem = self.problems[0]


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
            # Duplicates among written keys were reported by _duplicate_keys; a key here
            # twice is a `<<: *merge` key overridden by the mapping itself, as YAML allows.
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
        data = path.read_bytes()
    except OSError as exc:
        raise YamlSourceError(Problem(f"cannot read file: {exc.strerror}", name)) from exc
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise YamlSourceError(Problem(
            f"not UTF-8 text: byte 0x{data[exc.start]:02x} at column {column} cannot be "
            "decoded; save the file as UTF-8", name, line)) from None
    return load_yaml_text(text, name)


MAX_EXPANDED_VALUES = 1_000_000  # far above any real topology (replication uses count:)


def _expansion_problem(root: yaml.Node, file: str) -> Problem | None:
    """Aliases (*name) let a few lines stand for billions of values (an "alias bomb")
    that would take minutes and gigabytes to build. Count what the document expands to,
    each shared node once (memoized), before building anything."""
    sizes: dict[int, int] = {}
    active: set[int] = set()
    found: list[Problem] = []

    def size(node: yaml.Node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in active:  # a recursive alias: the document contains itself
            found.append(Problem("a recursive alias: this value contains itself through "
                                 "an alias (*name)", file, node.start_mark.line + 1))
            return MAX_EXPANDED_VALUES + 1
        active.add(key)
        total = 1
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                total += size(key_node) + size(value_node)
                if found:
                    break
        elif isinstance(node, yaml.SequenceNode):
            for item in node.value:
                total += size(item)
                if found:
                    break
        active.discard(key)
        sizes[key] = total
        if total > MAX_EXPANDED_VALUES and not found:
            found.append(Problem(
                f"this value expands to {total:,} values through aliases (*name), more "
                f"than the {MAX_EXPANDED_VALUES:,} a file may hold (an alias bomb?); "
                "use count: to replicate nodes", file, node.start_mark.line + 1))
        return total

    size(root)
    return found[0] if found else None


def _duplicate_keys(root: yaml.Node, file: str) -> list[Problem]:
    """Every key written twice in one mapping, with its key path and both lines."""
    problems: list[Problem] = []
    seen: set[int] = set()

    def walk(node: yaml.Node, path: str) -> None:
        if id(node) in seen:  # aliases share nodes
            return
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            first: dict[str, int] = {}
            for key_node, value_node in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = str(key_node.value) if isinstance(key_node, yaml.ScalarNode) else "?"
                sub = f"{path}.{key}" if path else key
                line = key_node.start_mark.line + 1
                if key in first:
                    problems.append(Problem(
                        f"duplicate key {key!r} (first at line {first[key]}); a key may appear "
                        f"only once in a mapping, so names must be unique", file, line, sub))
                else:
                    first[key] = line
                walk(value_node, sub)
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                walk(item, f"{path}[{index}]")

    walk(root, "")
    return problems


def load_yaml_text(text: str, name: str) -> Any:
    loader = _make_loader(name)(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        duplicates = _duplicate_keys(node, name)
        if duplicates:
            raise YamlSourceError(duplicates)
        expansion = _expansion_problem(node, name)
        if expansion is not None:
            raise YamlSourceError(expansion)
        return loader.construct_document(node)
    except YamlSourceError:
        raise
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        raise YamlSourceError(Problem(f"invalid YAML: {exc.problem}", name, line)) from exc
    except yaml.YAMLError as exc:
        raise YamlSourceError(Problem(f"invalid YAML: {exc}", name)) from exc
    finally:
        loader.dispose()
