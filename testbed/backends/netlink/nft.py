"""nftables rulesets loaded through libnftables (the library the `nft` tool is built on)
from this process, inside the node's namespace.

`ip netns exec NS nft -f -` per NAT costs a process, a mount namespace and a /sys
remount each: at 2,400 home NATs that was the slowest part of a build. libnftables opens
its netlink socket in the calling thread's namespace; contexts are made and freed under
one lock, as older libnftables versions keep some global state.
"""

from __future__ import annotations

import ctypes
import threading
from functools import cache

from testbed.errors import CommandFailed
from testbed.process import namespaces

_LOCK = threading.Lock()


@cache
def _library() -> ctypes.CDLL | None:
    try:
        lib = ctypes.CDLL("libnftables.so.1")
    except OSError:
        return None  # no libnftables (e.g. not Debian's nftables): the nft tool then
    lib.nft_ctx_new.restype = ctypes.c_void_p
    lib.nft_ctx_new.argtypes = [ctypes.c_uint32]
    lib.nft_ctx_free.argtypes = [ctypes.c_void_p]
    lib.nft_ctx_buffer_error.argtypes = [ctypes.c_void_p]
    lib.nft_ctx_buffer_output.argtypes = [ctypes.c_void_p]
    lib.nft_ctx_get_error_buffer.restype = ctypes.c_char_p
    lib.nft_ctx_get_error_buffer.argtypes = [ctypes.c_void_p]
    lib.nft_run_cmd_from_buffer.restype = ctypes.c_int
    lib.nft_run_cmd_from_buffer.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
    return lib


def available() -> bool:
    return _library() is not None


def load(namespace: str, ruleset: str, context: str) -> None:
    """Load `ruleset` (nft -f syntax) in `namespace`; raise CommandFailed with nft's own
    error text and the numbered input, as the tool path does."""
    lib = _library()
    if lib is None:
        raise RuntimeError("libnftables is not available")
    with _LOCK, namespaces.inside(namespace):
        ctx = lib.nft_ctx_new(0)
        try:
            lib.nft_ctx_buffer_error(ctx)
            lib.nft_ctx_buffer_output(ctx)
            code = lib.nft_run_cmd_from_buffer(ctx, ruleset.encode())
            error = (lib.nft_ctx_get_error_buffer(ctx) or b"").decode(errors="replace")
        finally:
            lib.nft_ctx_free(ctx)
    if code != 0:
        numbered = "\n".join(f"{i:4}: {line}" for i, line in
                             enumerate(ruleset.splitlines()[:40], 1))
        raise CommandFailed(["libnftables", namespace], code,
                            f"{error}\n--- input was ---\n{numbered}", context)
