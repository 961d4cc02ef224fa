"""SIGINT and SIGTERM during `testbed up`: roll back, even when Python drops the exception.

Python runs a signal handler between two bytecodes of the main thread, wherever that is.
If it is inside code whose exceptions the interpreter only prints ("Exception ignored
in ..."), such as the at-fork hooks that subprocess runs around every fork with a
preexec_fn (how services enter their namespace), a __del__ or a weakref callback, the
KeyboardInterrupt is lost and `up` would finish and leave the lab up. So the signal is
also remembered by a guard, whose `check()` raises it again at safe points.

A second signal while the first one's rollback runs is ignored: it must not interrupt
the clean-up half-way (SIGKILL still works, and `testbed down` cleans up after it).
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class SignalGuard:
    """The signals received while a guarded block runs (signal dispositions are
    process-wide; the guard is the block's own record of them)."""

    def __init__(self) -> None:
        self.received: list[int] = []

    def handle(self, signum: int, frame: FrameType | None) -> None:
        if self.received:
            return  # already interrupted: let the rollback finish
        self.received.append(signum)
        raise KeyboardInterrupt(f"signal {signum}")

    def check(self) -> None:
        """Raise KeyboardInterrupt if a signal came (its first raise may have been lost)."""
        if self.received:
            raise KeyboardInterrupt(f"signal {self.received[0]}")


def no_signal_check() -> None:
    """The checkpoint of code that runs outside a guarded block."""


@contextmanager
def rollback_on_signals() -> Iterator[SignalGuard]:
    """Within the block, SIGINT and SIGTERM raise KeyboardInterrupt (once); the guard's
    `check` raises it again at safe points."""
    guard = SignalGuard()
    previous = {sig: signal.signal(sig, guard.handle) for sig in SIGNALS}
    try:
        yield guard
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
