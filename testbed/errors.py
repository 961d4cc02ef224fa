"""One exception tree for the whole testbed.

Every error a user can cause or meet derives from TestbedError and carries a message they
can act on: file:line and key path for YAML, the failing command and its stderr for the
kernel tools.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


class TestbedError(Exception):
    """Base of every error the testbed raises on purpose."""

    __test__ = False  # not a pytest test class despite the name


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input file: where it is and what is allowed."""

    message: str
    file: str | None = None
    line: int | None = None
    path: str = ""

    def __str__(self) -> str:
        where = ""
        if self.file:
            where = self.file + (f":{self.line}" if self.line else "") + ": "
        key = f"{self.path}: " if self.path else ""
        return f"{where}{key}{self.message}"


class InputError(TestbedError):
    """A user-written file is invalid; holds every problem found, not just the first."""

    def __init__(self, problems: Sequence[Problem], what: str = "input") -> None:
        self.problems = list(problems)
        count = len(self.problems)
        head = f"{what} has {count} problem{'s' if count != 1 else ''}:"
        super().__init__("\n".join([head, *(f"  {p}" for p in self.problems)]))


class TopologyError(InputError):
    """The topology YAML is invalid (syntax, schema or meaning)."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        super().__init__(problems, what="topology")


class ExportError(InputError):
    """The topology uses something the export format cannot express."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        super().__init__(problems, what="export")


class ScenarioError(InputError):
    """The scenario YAML is invalid."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        super().__init__(problems, what="scenario")


class SweepError(InputError):
    """A sweep's grid names a parameter that does not exist, or a value that does not
    load; raised before any lab is built."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        super().__init__(problems, what="sweep")


class BackendError(TestbedError):
    """Building or changing the emulated network failed."""


class CommandFailed(BackendError):
    """A kernel tool (ip, tc, nft, ...) exited non-zero; says which and why."""

    def __init__(self, argv: Sequence[str], returncode: int, stderr: str,
                 context: str = "") -> None:
        self.argv = list(argv)
        self.returncode = returncode
        self.stderr = stderr.strip()
        what = f"{context}: " if context else ""
        super().__init__(
            f"{what}command failed (exit {returncode}): {' '.join(self.argv)}\n{self.stderr}"
        )


class MissingKernelFeature(BackendError):
    """The running kernel lacks something the topology asks for (e.g. sch_netem)."""


class LabError(TestbedError):
    """A lab cannot be found, is already up, or its state file is unreadable."""


class ProcessError(TestbedError):
    """A service inside a lab node could not be started or stopped."""


class StepError(TestbedError):
    """A scenario step could not act on the running lab (logged; the run goes on)."""


class StepFailed(TestbedError):
    """A scenario step that must succeed did not (a playbook's task failed): the run
    stops, cleans up and keeps its results, marked incomplete."""


class CaptureError(TestbedError):
    """A packet capture could not be started, stopped or read (e.g. a truncated pcap)."""


class ExpectationError(InputError):
    """An expectation file (`expect:`) is invalid."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        super().__init__(problems, what="expectations")


class ResultsError(TestbedError):
    """A run's results directory is incomplete or a file in it is broken (names file:line)."""
