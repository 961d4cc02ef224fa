"""The README's Python example runs as written (on a real lab, with a unique lab name so
labs side by side never clash): a ping from a home PC behind its NAT reaches the login
server, and a reboot brings the PC back."""

from __future__ import annotations

import contextlib
import io
import os
import re
from pathlib import Path

import pytest

from tests.conftest import REPO, unique_lab_name

pytestmark = [pytest.mark.root, pytest.mark.slow]


def readme_python_example() -> str:
    text = (REPO / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    example = next(b for b in blocks if "from testbed import Lab" in b)
    return example


def test_the_readme_python_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                        ) -> None:
    code = readme_python_example()
    name = unique_lab_name("py")
    assert "homes=4)" in code
    code = code.replace("homes=4)", f"homes=4, name={name!r})")
    monkeypatch.chdir(REPO)
    monkeypatch.setenv("TESTBED_STATE_DIR", str(tmp_path / "state"))
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(code, "README.md", "exec"), {})  # noqa: S102 - our own README
    # home001's ping, then home002's after its reboot
    assert printed.getvalue().count(", 1 received") == 2, printed.getvalue()
    assert not (tmp_path / "state" / name).exists()  # the with block removed the lab
    assert not any(line.startswith(f"tb-{name}-") for line in
                   os.popen("ip netns list").read().splitlines())
