"""A CDN whose episodes do not fit where the lab keeps its state is refused before
anything is built. The default state root, /run/testbed, is a small tmpfs on many
machines (a tenth of the memory); here a 64 MB tmpfs stands in for it."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO, run_cli, unique_lab_name

pytestmark = [pytest.mark.root]


@pytest.fixture
def small_tmpfs(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "run"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(mount)],
                   check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def test_up_refuses_episodes_the_state_directory_cannot_hold(small_tmpfs: Path) -> None:
    name = unique_lab_name("cdsk")
    result = run_cli("up", str(REPO / "topologies" / "p2p-cdn.yaml"), "--name", name,
                     "--set", "episode_size=20MB", "--set", "homes=2", "--set", "seeds=1",
                     state_dir=small_tmpfs / "testbed", timeout=120)
    assert result.returncode != 0
    # the origin's catalogue (4 x 20 MB) and the preloaded PC's copy of it come first
    assert f"cannot hold lab '{name}'" in result.stderr, result.stderr
    assert "disk: the nodes may write ~240 MB into" in result.stderr
    assert "(most: origin 80 MB, seed01 80 MB, home001 40 MB)" in result.stderr
    assert "its filesystem has 64 MB free" in result.stderr
    assert "--state-dir" in result.stderr
    namespaces = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True,
                                check=True).stdout
    assert name not in namespaces  # nothing was built
    assert not any((small_tmpfs / "testbed").glob(f"{name}*"))  # nor a state directory
