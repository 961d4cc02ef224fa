"""Entering named network namespaces (`ip netns add` style, under /run/netns).

Python 3.11 has no os.setns, so libc's setns is called through ctypes. Only the network
namespace is entered: that is what addresses, routes and sockets depend on.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from testbed.errors import BackendError

NETNS_DIR = Path("/run/netns")
CLONE_NEWNET = 0x40000000

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def netns_path(name: str) -> Path:
    return NETNS_DIR / name


def exists(name: str) -> bool:
    return netns_path(name).exists()


def inode(name: str) -> int | None:
    """The namespace's identity: equals the inode in /proc/PID/ns/net of its processes."""
    try:
        return os.stat(netns_path(name)).st_ino
    except OSError:
        return None


def setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise BackendError(f"setns failed: {os.strerror(err)}")


def enter(name: str) -> None:
    """Move the calling thread into the namespace for good (used right before exec)."""
    try:
        fd = os.open(netns_path(name), os.O_RDONLY)
    except OSError as exc:
        raise BackendError(f"network namespace {name!r} does not exist ({exc.strerror}); "
                           "is the lab up?") from exc
    try:
        setns(fd)
    finally:
        os.close(fd)


@contextmanager
def inside(name: str) -> Iterator[None]:
    """Run a block in the namespace, then return to the original one (single thread)."""
    original = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        enter(name)
        yield
    finally:
        setns(original)
        os.close(original)


def write_sysctls(name: str, values: dict[str, str]) -> None:
    """Write /proc/sys/net entries as seen from inside the namespace."""
    if not values:
        return
    with inside(name):
        for key, value in values.items():
            path = Path("/proc/sys") / key.replace(".", "/")
            try:
                path.write_text(value)
            except OSError as exc:
                raise BackendError(f"cannot set {key}={value} in {name}: {exc.strerror}") from exc


def processes_in_any(names: list[str]) -> list[int]:
    """Pids inside any of these namespaces (found by inode, never by name), in one pass
    over /proc."""
    inodes = {ino for ino in map(inode, names) if ino is not None}
    if not inodes:
        return []
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.stat(entry / "ns" / "net").st_ino in inodes:
                pids.append(int(entry.name))
        except OSError:
            continue
    return pids
