"""Files that are not what a topology should be fail fast with file:line, never with a
traceback or minutes of work: text that is not UTF-8, and an alias bomb."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from testbed.errors import TopologyError
from testbed.topology.loader import load_topology
from tests.conftest import run_cli

BOMB = """\
name: bomb
a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]
h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]
i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h]
nodes: {}
"""


@pytest.mark.parametrize("file_name", ["latin1.yaml", "latin1.clab.yml"])
def test_validate_names_the_line_of_a_byte_that_is_not_utf8(tmp_path: Path,
                                                            file_name: str) -> None:
    """A containerlab file too: its fast loader gives way to the line-keeping one."""
    path = tmp_path / file_name
    path.write_bytes(b"name: x\nnodes:\n  caf\xe9: {kind: host}\n")
    result = run_cli("validate", str(path))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert f"{path}:3: not UTF-8 text: byte 0xe9 at column 6" in result.stderr


def test_an_alias_bomb_is_refused_at_once_at_its_line(tmp_path: Path) -> None:
    path = tmp_path / "bomb.yaml"
    path.write_text(BOMB)
    began = time.monotonic()
    with pytest.raises(TopologyError) as caught:
        load_topology(path)
    assert time.monotonic() - began < 5.0  # took 13 s before expansion was counted
    message = str(caught.value)
    assert f"{path}:8:" in message and "alias bomb" in message


def test_a_recursive_alias_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "loop.yaml"
    path.write_text("name: loop\nx: &x [1, *x]\nnodes: {}\n")
    with pytest.raises(TopologyError, match="recursive alias"):
        load_topology(path)


def test_ordinary_aliases_still_work(tmp_path: Path) -> None:
    path = tmp_path / "ok.yaml"
    path.write_text("name: ok\nnodes:\n  r: &r {kind: router}\n  s: *r\n")
    assert set(load_topology(path).nodes) == {"r", "s"}
