"""A per-lab pre-forking launcher: imports the reference peer once, then forks each peer
into its node's network namespace on request.

Every peer stays its own process (own pid, killable and restartable alone), but the
interpreter and the imported modules are shared copy-on-write between all of them, which
is what lets 1000 peers fit in a few GB. What keeps the sharing intact:

- `gc.freeze()`: the collector never touches (and so never copies) the shared objects;
- a rehearsal (testbed/peer/rehearsal.py) runs the peer's code once before any fork, so
  CPython's one-time writes (code warm-up counters, specialised bytecode, lazy caches)
  land in the shared copy instead of in each peer;
- the forking process does next to nothing between forks: every page it writes after
  a fork is left behind as a private page of the peer forked before. So the socket
  protocol (accept, JSON, start times) runs in a helper process, and the forker only
  reads a request from a pipe, forks and writes the pid back; the kernel reaps exited
  peers (SIGCHLD ignored), so no Python code runs when one exits.

What CPython still writes in every peer (reference counts of whatever it touches) is
mostly the same in all of them, or undone: KSM (testbed/process/ksm.py) has the kernel
merge those identical copies again, which takes a peer from ~5.3 MB to ~1.4 MB of PSS
(benchmarks/bench_memory.py, 1000 peers). If the launcher turned ksmd on, it turns it off
again when it exits, unless another lab's launcher still relies on it (see ksm.py).

Protocol on its Unix socket: one JSON request per connection,
{"namespace", "config", "log", "cwd"} -> {"pid", "start_time"} or {"error"}.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import gc
import json
import os
import select
import signal
import socket
import sys
import traceback
from pathlib import Path

from testbed.errors import ProcessError
from testbed.process import ksm, namespaces
from testbed.process.supervisor import start_time

FIELDS = ("namespace", "config", "log", "cwd")
PIPE_BUF = 4096  # pipe writes up to this size are atomic: one request, one read


def _child(request: bytes) -> None:
    """Runs in the forked child: become the peer. Never returns."""
    code = 1
    try:
        namespace, config, log_path, cwd = os.fsdecode(request).split("\0")
        os.setsid()
        namespaces.enter(namespace)
        os.chdir(cwd)
        log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(null)
        os.close(log)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)  # the launcher's are _leave
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGHUP, signal.SIG_DFL)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        from testbed.peer.runner import main  # already imported by _prewarm

        code = main(Path(config))
    except BaseException as exc:  # noqa: BLE001 - the child must never return into the launcher
        with contextlib.suppress(Exception):
            print(f"launcher child failed: {exc!r}", file=sys.stderr, flush=True)
    finally:
        os._exit(code)


def _prewarm() -> None:
    """Import and exercise what every peer uses, so children inherit it ready-made
    instead of each building (and writing) its own copy."""
    import testbed.peer.runner  # noqa: F401 - the point: import once, share with every child
    from testbed.peer.rehearsal import rehearse

    rehearse()
    own = os.open("/proc/self/ns/net", os.O_RDONLY)  # warm the ctypes path of setns
    try:
        namespaces.setns(own)
    finally:
        os.close(own)
    gc.collect()


def _fork_loop(requests: int, replies: int) -> None:
    """The forker: the least code possible between two forks. Never returns."""
    while True:
        request = os.read(requests, PIPE_BUF)
        if not request:  # the helper is gone: so is the lab's launcher
            signal.pthread_sigmask(signal.SIG_BLOCK, _LEAVING)  # _leave: not on top of this
            with contextlib.suppress(Exception):
                print(ksm.stop_ksmd(), flush=True)
            os._exit(0)
        try:
            pid = os.fork()
        except OSError:
            pid = -1
        if pid == 0:
            os.close(requests)
            os.close(replies)
            _child(request)
        os.write(replies, max(pid, 0).to_bytes(8, "little"))


def _frontend(path: Path, requests: int, replies: int) -> None:
    """The helper: serves the socket protocol and asks the forker for each fork."""
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    os.chmod(path, 0o600)
    server.listen(64)
    print("ready", flush=True)
    while True:
        conn, _ = server.accept()
        with conn:
            line = conn.makefile().readline()
            if not line:
                continue  # a liveness probe: connected and went away
            reply = _fork_for(line, requests, replies)
            with contextlib.suppress(OSError):  # the requester gave up
                conn.sendall((json.dumps(reply) + "\n").encode())


def _fork_for(line: str, requests: int, replies: int) -> dict[str, object]:
    try:
        request = json.loads(line)
        fields = [str(request[name]) for name in FIELDS]
    except (ValueError, KeyError, TypeError) as exc:
        return {"error": f"bad request: {exc!r}"}
    message = os.fsencode("\0".join(fields))
    if "\0" in "".join(fields) or len(message) > PIPE_BUF:
        return {"error": "paths too long or holding NUL characters"}
    os.write(requests, message)
    ready, _, _ = select.select([replies], [], [], 30)
    answer = os.read(replies, 8) if ready else b""
    if len(answer) != 8:
        os._exit(1)  # the forker is gone or stuck: fail loudly, the lab's peers stay
    pid = int.from_bytes(answer, "little")
    if pid == 0:
        return {"error": "fork failed (out of processes or memory?)"}
    return {"pid": pid, "start_time": start_time(pid) or 0}


def _leave(forker: int, signum: int, frame: object) -> None:
    """SIGTERM (`testbed down`), SIGINT or SIGHUP: undo what this launcher changed on
    the host (ksmd's settings, if it started it), then exit as the signal would have.
    In the helper, or in a peer not yet past its own signal set-up, it just exits."""
    for sig in _LEAVING:
        signal.signal(sig, signal.SIG_IGN)  # once is enough
    with contextlib.suppress(Exception):
        if os.getpid() == forker:
            print(ksm.stop_ksmd(), flush=True)
    os._exit(128 + signum)


_LEAVING = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def _use_ksm() -> None:
    if ksm.disabled():
        print(f"KSM: off ({ksm.OFF_ENV}={os.environ[ksm.OFF_ENV]}): nothing marked, "
              f"ksmd left as it is", flush=True)
        return
    # no signal between recording this process as a ksmd user and the handler that
    # undoes it: a SIGTERM in between would leave ksmd on for good
    signal.pthread_sigmask(signal.SIG_BLOCK, _LEAVING)
    try:
        leave = functools.partial(_leave, os.getpid())  # the pid ksm.start_ksmd() records
        for sig in _LEAVING:
            signal.signal(sig, leave)
        pages, problem = ksm.pages_to_scan()
        if problem:
            print(problem, flush=True)
        print(ksm.start_ksmd(pages_to_scan=pages), flush=True)
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _LEAVING)
    marked = ksm.mark_mergeable()  # inherited by every fork below: helper and peers
    print(f"KSM: {marked >> 20} MB of the launcher's memory marked mergeable", flush=True)


def serve(path: Path) -> None:
    _prewarm()
    _use_ksm()
    requests_r, requests_w = os.pipe()  # helper -> forker
    replies_r, replies_w = os.pipe()  # forker -> helper
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the kernel reaps exited peers
    gc.freeze()
    if os.fork() == 0:  # the helper; it dies with the forker's process group at `down`
        os.close(requests_r)
        os.close(replies_w)
        try:
            _frontend(path, requests_w, replies_r)
        except BaseException:  # noqa: BLE001 - say why in the launcher's log, then go
            traceback.print_exc()
        finally:
            os._exit(1)
    os.close(requests_w)
    os.close(replies_r)
    _fork_loop(requests_r, replies_w)


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
