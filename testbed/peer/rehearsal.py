"""A dress rehearsal of the overlay inside the pre-forking launcher, before any fork.

Why: a forked peer shares the launcher's memory copy-on-write, and on CPython 3.11 code
that runs for the first time writes to shared pages: each function's warm-up counter
and specialised bytecode live inside its code object, functions get a version tag, and
many libraries fill caches lazily (asyncio, logging, json, prometheus_client, the
cryptography bindings). If every one of 1000 peers did that on its own, each would copy
those pages. Running the real code paths once here (a login server, a supernode and
clients logging in, keep-alives, metrics scrapes, status queries), on the loopback of
the launcher's own namespace, does those writes once, in the shared copy.

Nothing of the rehearsal survives it: its sockets are closed, its tasks cancelled and
its files (host caches, boot markers) live in a temporary directory.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import socket
import sys
import tempfile
from pathlib import Path

from testbed.peer.auth import TokenSigner
from testbed.peer.config import PeerConfig
from testbed.peer.metrics import PeerMetrics
from testbed.peer.runner import run_login, run_node

HOST = "127.0.0.1"
CLIENTS = 8
TIME_SCALE = 0.01  # keep-alives every 50 ms: many rounds in a short rehearsal


def _free_port() -> int:
    """A port free for both TCP and UDP on the loopback (a supernode uses both)."""
    while True:
        with socket.socket() as tcp, socket.socket(type=socket.SOCK_DGRAM) as udp:
            tcp.bind((HOST, 0))
            port = int(tcp.getsockname()[1])
            try:
                udp.bind((HOST, port))
            except OSError:
                continue
            return port


def _configs(root: Path) -> list[PeerConfig]:
    signer = TokenSigner.generate()
    login, sn = f"{HOST}:{_free_port()}", _free_port()
    users = {f"u{i}": f"pw{i}" for i in range(CLIENTS)}
    common = dict(address=HOST, login_server=login, public_key=signer.public_bytes().hex(),
                  mgmt_address=HOST, time_scale=TIME_SCALE)
    configs = [PeerConfig(node="login", role="login", state_dir=str(root / "login"),
                          metrics_port=_free_port(), signing_key=signer.private_bytes().hex(),
                          users=users, **common),  # type: ignore[arg-type]
               PeerConfig(node="sn", role="peer", state_dir=str(root / "sn"),
                          metrics_port=_free_port(), user="sn", sn_capable=True,
                          supernode={"port": sn, "extra_tcp_ports": []},
                          **common)]  # type: ignore[arg-type]
    for i, (user, password) in enumerate(users.items()):
        configs.append(PeerConfig(
            node=user, role="peer", state_dir=str(root / user), metrics_port=_free_port(),
            user=user, password=password, bootstrap=[f"{HOST}:{sn}"], seed=i,
            policy="2007" if i % 2 else "fixed", **common))  # type: ignore[arg-type]
    for config in configs:  # through the file, as a peer reads it
        Path(config.state_dir).mkdir(parents=True)
        config.save(Path(config.state_dir) / "peer.json")
    return [PeerConfig.load(Path(c.state_dir) / "peer.json") for c in configs]


async def _get(port: int, path: str) -> bytes:
    with contextlib.suppress(OSError, TimeoutError):
        reader, writer = await asyncio.wait_for(asyncio.open_connection(HOST, port), 1)
        writer.write(f"GET {path} HTTP/1.0\r\n\r\n".encode())
        body = await asyncio.wait_for(reader.read(), 1)
        writer.close()
        return body
    return b""


async def _play(configs: list[PeerConfig], seconds: float) -> None:
    loop = asyncio.get_running_loop()
    tasks = []
    for config in configs:
        role = run_login if config.role == "login" else run_node
        tasks.append(loop.create_task(role(config, PeerMetrics(config.node))))
        await asyncio.sleep(0.05)  # the login server and the supernode first
    deadline = loop.time() + seconds
    while loop.time() < deadline:
        await asyncio.sleep(0.1)
        for config in configs:
            await _get(config.metrics_port, "/metrics")
            if config.role == "peer":
                await _get(config.metrics_port, "/status")
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def rehearse(seconds: float = 1.5) -> bool:
    """Play a small overlay on the loopback for `seconds`, then leave no trace of it.
    False if the loopback is unusable here (peers still work, they just share less)."""
    try:
        with tempfile.TemporaryDirectory(prefix="peer-rehearsal-") as tmp:
            asyncio.run(asyncio.wait_for(_play(_configs(Path(tmp)), seconds), seconds * 4))
    except (OSError, TimeoutError) as exc:
        print(f"peer rehearsal skipped: {exc!r}", file=sys.stderr, flush=True)
        return False
    finally:
        gc.collect()  # sockets, transports and servers of the rehearsal close here
    return True
