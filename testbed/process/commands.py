"""Running kernel tools (ip, tc, nft) and raising with their stderr when they fail."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence

from testbed.errors import BackendError, CommandFailed

# A tool must not outlive the testbed command that started it: after `up` is killed with
# SIGKILL, an orphaned `ip -batch` still holding its input would go on creating namespaces
# while `testbed down` removes the lab, and leave them behind. setpriv (util-linux, like
# unshare) asks the kernel to SIGKILL the tool when its parent dies, then execs it.
DIE_WITH_PARENT = ("setpriv", "--pdeathsig", "KILL")


def run(argv: Sequence[str], *, stdin: str | None = None, context: str = "",
        check: bool = True) -> subprocess.CompletedProcess[str]:
    for tool in (DIE_WITH_PARENT[0], argv[0]):
        if shutil.which(tool) is None:
            raise BackendError(f"{tool} is not installed; run the set-up (scripts/setup.sh)")
    result = subprocess.run([*DIE_WITH_PARENT, *argv], input=stdin, capture_output=True,
                            text=True, check=False)
    if check and result.returncode != 0:
        detail = result.stderr
        if stdin is not None:
            detail = f"{detail}\n--- input was ---\n{_numbered(stdin)}"
        raise CommandFailed(argv, result.returncode, detail, context)
    return result


def batch(tool: str, lines: Sequence[str], *, namespace: str | None = None, context: str = "",
          force: bool = False) -> None:
    """`ip -batch -` / `tc -batch -`: one process for many commands (the fast path)."""
    if not lines:
        return
    argv = [tool]
    if namespace:
        argv += ["-n", namespace]
    if force:
        argv.append("-force")
    argv += ["-batch", "-"]
    run(argv, stdin="\n".join(lines) + "\n", context=context)


def require_tools(*tools: str) -> None:
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        raise BackendError(f"missing tools: {', '.join(missing)}; run the set-up "
                           "(sudo bash scripts/setup.sh)")


def _numbered(text: str, limit: int = 40) -> str:
    lines = text.splitlines()
    shown = [f"{i + 1:4}: {line}" for i, line in enumerate(lines[:limit])]
    if len(lines) > limit:
        shown.append(f"      ... {len(lines) - limit} more lines")
    return "\n".join(shown)
