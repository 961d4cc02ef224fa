"""SIGINT and SIGTERM during `testbed up`: roll back, even when Python drops the exception.

Python runs a signal handler between two bytecodes of the main thread, wherever that is.
If it is inside code whose exceptions the interpreter only prints ("Exception ignored
in ..."), such as the at-fork hooks that subprocess runs around every fork with a
preexec_fn (how services enter their namespace), a __del__ or a weakref callback, the
KeyboardInterrupt is lost and `up` would finish and leave the lab up. So the signal is
also remembered, and `check()` at safe points raises it again.

A second signal while the first one's rollback runs is ignored: it must not interrupt
the clean-up half-way (SIGKILL still works, and `testbed down` cleans up after it).
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

SIGNALS = (signal.SIGINT, signal.SIGTERM)

_received: list[int] = []


def _handler(signum: int, frame: FrameType | None) -> None:
    if _received:
        return  # already interrupted: let the rollback finish
    _received.append(signum)
    raise KeyboardInterrupt(f"signal {signum}")


def check() -> None:
    """Raise KeyboardInterrupt if a signal came (its first raise may have been lost)."""
    if _received:
        raise KeyboardInterrupt(f"signal {_received[0]}")


@contextmanager
def rollback_on_signals() -> Iterator[None]:
    """Within the block, SIGINT and SIGTERM raise KeyboardInterrupt (once)."""
    _received.clear()
    previous = {sig: signal.signal(sig, _handler) for sig in SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        _received.clear()
