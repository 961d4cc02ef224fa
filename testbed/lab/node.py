"""One node of a running lab, as a user's code sees it: its name, kind, addresses, and
commands run inside it (the shape Mininet users know: `lab["h1"].cmd("ping -c1 ...")`)."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from testbed.backends.base import Backend
from testbed.errors import LabError
from testbed.plan.model import PlannedNode


@dataclass(frozen=True)
class LabNode:
    planned: PlannedNode
    backend: Backend

    @property
    def name(self) -> str:
        return self.planned.name

    @property
    def kind(self) -> str:
        return self.planned.kind

    @property
    def group(self) -> str | None:
        return self.planned.node.group

    @property
    def labels(self) -> dict[str, str | int | float | bool]:
        return dict(self.planned.node.labels)

    @property
    def namespace(self) -> str:
        """The node's network namespace; a switch (a bridge in the fabric) has none."""
        if not self.planned.namespace:
            raise LabError(f"{self.name} is a {self.kind}: it has no namespace of its own "
                           "to run commands in")
        return self.planned.namespace

    @property
    def ip(self) -> str | None:
        """The node's first emulated address, without its prefix length."""
        return self.planned.primary_address()

    @property
    def ips(self) -> list[str]:
        return [a.split("/")[0] for a in self.planned.addresses()]

    @property
    def mgmt_ip(self) -> str | None:
        """Its address on the out-of-band management network (metrics, control)."""
        address = self.planned.mgmt_address
        return address.split("/")[0] if address else None

    @property
    def interfaces(self) -> list[str]:
        return [i.name for i in self.planned.interfaces]

    def exec(self, *argv: str, timeout: float | None = 30.0, stdin: str | None = None,
             check: bool = False) -> subprocess.CompletedProcess[str]:
        """Run a program inside the node and wait for it."""
        result = self.backend.run(self.namespace, argv, timeout=timeout, stdin=stdin)
        if check and result.returncode != 0:
            raise LabError(f"{self.name}: {' '.join(argv)} exited {result.returncode}: "
                           f"{(result.stderr or result.stdout).strip()[-500:]}")
        return result

    def cmd(self, *words: str, timeout: float | None = 60.0) -> str:
        """A shell command line inside the node (words are joined with spaces, as
        Mininet's Node.cmd does); returns what it printed, stdout then stderr."""
        result = self.exec("sh", "-c", " ".join(words), timeout=timeout)
        return result.stdout + result.stderr

    def popen(self, *argv: str, **kwargs: Any) -> subprocess.Popen[str]:
        """Start a program inside the node without waiting (subprocess.Popen keywords)."""
        return self.backend.popen(self.namespace, argv, **kwargs)

    def pexec(self, argv: Sequence[str], timeout: float | None = 60.0
              ) -> tuple[str, str, int]:
        """(stdout, stderr, exit status) of a program inside the node, as Mininet's."""
        result = self.exec(*argv, timeout=timeout)
        return result.stdout, result.stderr, result.returncode

    def __repr__(self) -> str:
        return f"<{self.kind} {self.name} {self.ip or ''}>".replace(" >", ">")
