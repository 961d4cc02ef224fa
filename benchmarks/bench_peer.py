"""Reference peer benchmarks: login server throughput on one core.

    .venv/bin/python benchmarks/bench_peer.py login     # logins/s, target >= 2000

The login server runs in its own process pinned to CPU 0 with unbounded capacity; real
clients on CPU 1 log in over loopback TCP (each connection sends LOGIN after LOGIN), each
login with a fresh nonce and a valid proof, each answer a signed token. The figure is a
lower bound: the one-core client may saturate before the server does.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SERVER = r"""
import asyncio, os, sys
os.sched_setaffinity(0, {0})
from testbed.peer.auth import TokenSigner
from testbed.peer.login_server import LoginServer, LoginSettings
from testbed.peer.metrics import PeerMetrics
users = {f"u{i}": f"pw{i}" for i in range(1000)}
async def main():
    server = LoginServer(users, TokenSigner.generate(),
                         LoginSettings(rate=1e9, queue=100000), PeerMetrics("login"))
    listener = await server.serve("127.0.0.1", 0)
    print(listener.sockets[0].getsockname()[1], flush=True)
    await asyncio.Event().wait()
asyncio.run(main())
"""


async def _client(port: int, user: int, until: float, counts: dict[str, int]) -> None:
    from testbed.peer.auth import login_proof
    from testbed.peer.wire import MessageType, StreamDecoder, encode

    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    decoder = StreamDecoder()
    name, password = f"u{user}", f"pw{user}"
    while time.monotonic() < until:
        ts, nonce = time.time(), uuid.uuid4().hex
        writer.write(encode(MessageType.LOGIN, {"user": name, "ts": ts, "nonce": nonce,
                                                "proof": login_proof(password, name, ts,
                                                                     nonce)}))
        frames = []
        while not frames:
            frames = decoder.feed(await reader.read(4096))
        counts[frames[0].type.name] = counts.get(frames[0].type.name, 0) + 1
    writer.close()


def bench_login(seconds: float, connections: int) -> dict[str, float]:
    server = subprocess.Popen([sys.executable, "-c", SERVER], stdout=subprocess.PIPE,
                              text=True, cwd=REPO)
    try:
        port = int((server.stdout or sys.stdin).readline())
        os.sched_setaffinity(0, {1 % (os.cpu_count() or 1)})
        counts: dict[str, int] = {}

        async def run() -> None:
            until = time.monotonic() + seconds
            await asyncio.gather(*(_client(port, i, until, counts)
                                   for i in range(connections)))

        began = time.monotonic()
        asyncio.run(run())
        took = time.monotonic() - began
    finally:
        server.kill()
        server.wait()
    ok = counts.get("LOGIN_OK", 0)
    return {"logins_per_s": ok / took, "ok": ok, "other": sum(counts.values()) - ok,
            "seconds": took, "connections": connections}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="what", required=True)
    login = sub.add_parser("login", help="login server throughput on one core")
    login.add_argument("--seconds", type=float, default=10.0)
    login.add_argument("--connections", type=int, default=64)
    args = parser.parse_args()
    if args.what == "login":
        result = bench_login(args.seconds, args.connections)
        print(json.dumps(result))
        verdict = "meets" if result["logins_per_s"] >= 2000 else "MISSES"
        print(f"login server: {result['logins_per_s']:.0f} logins/s on one core "
              f"({verdict} the 2000/s target; {result['connections']} connections, "
              f"{result['seconds']:.1f}s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
