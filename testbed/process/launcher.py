"""A per-lab pre-forking launcher: imports the reference peer once, then forks each peer
into its node's network namespace on request.

Every peer stays its own process (own pid, killable and restartable alone), but the
interpreter and the imported modules are shared copy-on-write between all of them, which
is what lets 1000 peers fit in a few GB. `gc.freeze()` keeps the collector from touching
(and so copying) the shared objects.

Protocol on its Unix socket: one JSON request per connection,
{"namespace", "config", "log", "cwd"} -> {"pid", "start_time"} or {"error"}.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import signal
import socket
import sys
from pathlib import Path

from testbed.errors import ProcessError
from testbed.process import namespaces
from testbed.process.supervisor import start_time


def _child(request: dict[str, str]) -> None:
    """Runs in the forked child: become the peer. Never returns."""
    code = 1
    try:
        os.setsid()
        namespaces.enter(request["namespace"])
        os.chdir(request["cwd"])
        log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        from testbed.peer.runner import main  # already imported by _prewarm

        code = main(Path(request["config"]))
    except BaseException as exc:  # noqa: BLE001 - the child must never return into the launcher
        with contextlib.suppress(Exception):
            print(f"launcher child failed: {exc!r}", file=sys.stderr, flush=True)
    finally:
        os._exit(code)


def _prewarm() -> None:
    """Import and exercise what every peer uses, so children inherit it ready-made
    instead of each building (and writing) its own copy."""
    import asyncio

    import testbed.peer.runner  # noqa: F401 - the point: import once, share with every child
    from testbed.peer.metrics import PeerMetrics

    PeerMetrics("prewarm").exposition()
    asyncio.run(asyncio.sleep(0))
    gc.collect()


def serve(path: Path) -> None:
    _prewarm()
    signal.signal(signal.SIGCHLD, _reap)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    os.chmod(path, 0o600)
    server.listen(64)
    gc.freeze()
    print("ready", flush=True)
    while True:
        try:
            conn, _ = server.accept()
        except InterruptedError:
            continue
        with conn:
            line = conn.makefile().readline()
            if not line:
                continue  # a liveness probe: connected and went away
            try:
                request = json.loads(line)
                pid = os.fork()
                if pid == 0:
                    server.close()
                    _child(request)
                reply: dict[str, object] = {"pid": pid, "start_time": start_time(pid) or 0}
            except (ValueError, KeyError, OSError) as exc:
                reply = {"error": str(exc)}
            with contextlib.suppress(OSError):  # the requester gave up
                conn.sendall((json.dumps(reply) + "\n").encode())


def _reap(signum: int, frame: object) -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def request_fork(socket_path: Path, *, namespace: str, config: Path, log: Path, cwd: Path
                 ) -> tuple[int, int]:
    """Ask a running launcher for a new peer; returns (pid, start_time)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(30)
        sock.connect(str(socket_path))
        sock.sendall((json.dumps({"namespace": namespace, "config": str(config),
                                  "log": str(log), "cwd": str(cwd)}) + "\n").encode())
        reply = json.loads(sock.makefile().readline())
    if "error" in reply:
        raise ProcessError(f"the peer launcher could not start a peer: {reply['error']}")
    return int(reply["pid"]), int(reply["start_time"])


def main() -> None:
    parser = argparse.ArgumentParser(description="the lab's pre-forking peer launcher")
    parser.add_argument("--socket", required=True, type=Path)
    serve(parser.parse_args().socket)


if __name__ == "__main__":
    main()
