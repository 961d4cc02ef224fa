"""`testbed graph`: replicated nodes fold into one box; --no-fold draws every node."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from testbed.render.graph import to_dot, to_mermaid
from testbed.topology.loader import load_topology, load_topology_text

REPO = Path(__file__).resolve().parents[2]
DEFAULT = REPO / "topologies" / "skype-2007.yaml"
HAS_DOT = shutil.which("dot") is not None


def graph_cli(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "testbed", "graph", *args],
                          capture_output=True, text=True, cwd=cwd, timeout=60,
                          env=dict(os.environ, PYTHONPATH=str(REPO)))


def dot_nodes(text: str) -> dict[str, str]:
    """node id -> label of a dot graph."""
    return dict(re.findall(r'^  (\w+) \[label="([^"]*)"', text, re.M))


def dot_edges(text: str) -> list[tuple[str, str, str]]:
    return re.findall(r'^  (\w+) -- (\w+) \[label="([^"]*)"\];$', text, re.M)


def test_dot_folds_replicated_nodes() -> None:
    result = graph_cli(str(DEFAULT), "--format", "dot")
    assert result.returncode == 0, result.stderr
    labels = sorted(dot_nodes(result.stdout).values())
    assert labels == sorted([
        "internet\\nrouter", "login\\nlogin", "sn01..sn10\\npeer x10",
        "home001-nat..home160-nat\\nnat x160", "home001..home160\\npeer x160",
        "corp-fw\\nnat", "corp-lan\\nswitch", "corp-proxy\\nproxy", "corp01..corp08\\npeer x8",
    ])
    assert result.stdout.startswith('graph "skype2007" {\n')
    ids = {label: node for node, label in dot_nodes(result.stdout).items()}
    edges = dot_edges(result.stdout)
    assert (ids["home001-nat..home160-nat\\nnat x160"], ids["internet\\nrouter"],
            "512kbit up / 8Mbit down") in edges
    assert (ids["home001..home160\\npeer x160"], ids["home001-nat..home160-nat\\nnat x160"],
            "100Mbit") in edges
    assert len(edges) == 8  # one per folded pair, not 342


def test_no_fold_lists_every_node() -> None:
    result = graph_cli(str(DEFAULT), "--format", "dot", "--no-fold")
    assert result.returncode == 0, result.stderr
    labels = dot_nodes(result.stdout).values()
    names = {label.split("\\n")[0] for label in labels}
    assert len(labels) == len(names) == 343
    assert {"home001", "home160", "home001-nat", "home160-nat", "sn10", "corp08"} <= names
    assert not [label for label in labels if ".." in label or " x" in label]
    assert len(dot_edges(result.stdout)) == 342


def test_mermaid_file_from_the_suffix(tmp_path: Path) -> None:
    out = tmp_path / "x.mmd"
    result = graph_cli(str(DEFAULT), "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    text = out.read_text()
    assert text.startswith("graph TD\n")
    assert re.search(r'^  n_\w+\["home001\.\.home160<br/>peer x160"\]$', text, re.M)
    assert re.search(r'^  n_\w+\["sn01\.\.sn10<br/>peer x10"\]$', text, re.M)
    assert re.search(r"^  n_\w+ ---\|512kbit up / 8Mbit down\| n_internet$", text, re.M)
    assert "home002" not in text


def test_mermaid_no_fold_lists_every_node(tmp_path: Path) -> None:
    out = tmp_path / "x.mmd"
    assert graph_cli(str(DEFAULT), "-o", str(out), "--no-fold").returncode == 0
    boxes = re.findall(r'^  (n_\w+)\["([^"<]*)<br/>', out.read_text(), re.M)
    assert len(boxes) == len({b for b, _ in boxes}) == 343
    assert ("n_home042", "home042") in boxes


@pytest.mark.skipif(not HAS_DOT, reason="needs Graphviz `dot` (apt-get install graphviz)")
def test_svg_output(tmp_path: Path) -> None:
    out = tmp_path / "out.svg"
    result = graph_cli(str(DEFAULT), "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"wrote {out}\n"
    svg = out.read_text()
    assert svg.startswith("<?xml")
    assert "<svg" in svg and svg.rstrip().endswith("</svg>")
    assert ">home001..home160</text>" in svg
    assert ">peer x160</text>" in svg


@pytest.mark.skipif(not HAS_DOT, reason="needs Graphviz `dot` (apt-get install graphviz)")
def test_unfolded_dot_is_valid_graphviz() -> None:
    text = to_dot(load_topology(DEFAULT), fold=False)
    result = subprocess.run(["dot", "-Tcanon"], input=text, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr


def test_png_without_output_file_is_an_error() -> None:
    result = graph_cli(str(DEFAULT), "--format", "png")
    assert result.returncode == 1
    assert "error: --format png needs -o FILE" in result.stderr


def test_graph_of_an_invalid_topology_exits_2(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("name: bad\nnodes:\n  pc: {kind: hots}\n")
    result = graph_cli("bad.yaml", "--format", "dot", cwd=tmp_path)
    assert result.returncode == 2
    assert "bad.yaml:3: nodes.pc.kind: unknown node kind 'hots'" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.yaml"]


def test_similar_names_stay_separate_boxes() -> None:
    topology = load_topology_text(textwrap.dedent("""\
        name: names
        nodes:
          core: {kind: router}
          a-b: {kind: host, uplink: {to: core}}
          a_b: {kind: host, uplink: {to: core}}
          r1: {kind: router, uplink: {to: core}}
          r2: {kind: router, uplink: {to: core}}
        """), "names.yaml")
    text = to_dot(topology)
    nodes = dot_nodes(text)
    assert sorted(nodes.values()) == ["a-b\\nhost", "a_b\\nhost", "core\\nrouter",
                                      "r1\\nrouter", "r2\\nrouter"]  # plain nodes never fold
    assert len(dot_edges(text)) == 4
    assert len(set(re.findall(r"^  (n_\w+)\[", to_mermaid(topology), re.M))) == 5
