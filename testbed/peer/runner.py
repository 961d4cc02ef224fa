"""Runs one reference peer process from its config: login server, or a node that is a
client and, when eligible and up long enough, also a supernode.

A supernode-capable node (public address, no NAT or proxy: decided by the testbed from
the topology) serves at once on its first boot (a lab starts in steady state) and after a
restart only once up for `min_uptime` (CALIBRATION.md: a restarted supernode takes time
before it serves again). A supernode that drops its role under overload (2010) carries on
as a client and tries the role again after another `min_uptime`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import signal
from collections.abc import Callable
from pathlib import Path

from testbed.peer.auth import TokenSigner, TokenVerifier
from testbed.peer.client import Client
from testbed.peer.config import PeerConfig
from testbed.peer.control import ControlServer, Handler
from testbed.peer.guard import (
    RateLimitedLog,
    flush_periodically,
    install_loop_handler,
    raise_nofile_limit,
)
from testbed.peer.hostcache import HostCache
from testbed.peer.login_server import LoginServer
from testbed.peer.metrics import PeerMetrics
from testbed.peer.policies import RetryBudget, policy_named
from testbed.peer.supernode import Supernode

log = logging.getLogger("testbed.peer")


async def run_login(config: PeerConfig, metrics: PeerMetrics) -> None:
    signer = TokenSigner.from_bytes(bytes.fromhex(config.signing_key))
    server = LoginServer(config.users, signer, config.login_settings(), metrics)
    if config.mgmt_address:
        await _control(config, metrics, None, lambda: None)
    port = int(config.login_server.rpartition(":")[2])
    await server.serve(config.address, port)
    log.info("login server on %s:%s", config.address, port)
    await asyncio.Event().wait()


def first_boot(state_dir: Path) -> bool:
    """True the first time a node's peer starts; later starts are restarts (the marker
    lives in the node's state directory, like a PC's disk)."""
    marker = state_dir / "booted"
    if marker.exists():
        return False
    marker.write_text("")
    return True


async def run_node(config: PeerConfig, metrics: PeerMetrics) -> None:
    settings = config.supernode_settings()
    policy = policy_named(config.policy).with_time_scale(config.time_scale)
    cache = HostCache(Path(config.state_dir) / "hostcache.json", config.bootstrap)
    rng = random.Random(config.seed)
    client = Client(user=config.user, password=config.password,
                    login_server=config.login_server, cache=cache, policy=policy,
                    metrics=metrics, rng=rng, proxy=config.proxy, address=config.address)
    supernode: Supernode | None = None
    if config.mgmt_address:
        await _control(config, metrics, client, lambda: supernode)
    booting = first_boot(Path(config.state_dir))
    if not config.sn_capable:
        if booting:
            await asyncio.sleep(rng.uniform(0, config.warmup))
        await client.run()
        return
    uptime = config.min_uptime  # already on the lab's clock (nodes/overlay.py)
    wait = 0.0 if booting else uptime
    while True:
        if wait:  # meanwhile an ordinary client, like any restarted PC
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(client.run(), wait)
        dropped = asyncio.Event()
        supernode = Supernode(config.node, config.address,
                              TokenVerifier(bytes.fromhex(config.public_key)), settings,
                              metrics, peers=lambda: cache.entries, on_drop_role=dropped.set)
        await supernode.start()
        log.info("promoted to supernode on %s:%s", config.address, settings.port)
        await dropped.wait()
        metrics.set_role("client")
        metrics.logged_in.set(0)
        log.info("dropped the supernode role under overload; a client for %.1fs", uptime)
        wait = max(uptime, 0.001)


async def _control(config: PeerConfig, metrics: PeerMetrics, client: Client | None,
                   supernode: Callable[[], Supernode | None]) -> None:
    """/metrics for every role; status, lookup and call for nodes."""

    async def exposition(query: dict[str, str]) -> str:
        return metrics.exposition()

    routes: dict[str, Handler] = {"/metrics": exposition}
    if client is not None:
        routes.update(_node_routes(config, client, supernode))
    await ControlServer(routes).serve(config.mgmt_address, config.metrics_port)


def _node_routes(config: PeerConfig, client: Client,
                 supernode: Callable[[], Supernode | None]) -> dict[str, Handler]:
    async def status(query: dict[str, str]) -> dict[str, object]:
        sn = supernode()
        return {"node": config.node, "user": client.user,
                "logged_in": client.attached is not None or bool(sn and sn.active),
                "attached_to": client.attached_to if client.attached else None,
                "supernode": bool(sn and sn.active),
                "children": len(sn.children) if sn else 0,
                "media": client.media_seen, "host_cache": client.cache.entries}

    async def lookup(query: dict[str, str]) -> dict[str, object]:
        return await client.lookup(query["user"]) or {"found": False}

    async def call(query: dict[str, str]) -> dict[str, object]:
        return await client.call(query["to"], float(query.get("seconds", "3")))

    async def set_policy(query: dict[str, str]) -> dict[str, object]:
        """The scenario's set_policy step: swap the retry policy of a running client."""
        client.policy = policy_named(query["name"]).with_time_scale(config.time_scale)
        client.budget = RetryBudget(client.policy)
        return {"node": config.node, "policy": client.policy.name}

    return {"/status": status, "/lookup": lookup, "/call": call, "/policy": set_policy}


def main(config_path: Path) -> int:
    config = PeerConfig.load(config_path)
    logging.basicConfig(level=logging.INFO,
                        format=f"%(asctime)s {config.node} %(levelname)s %(message)s")
    fds = raise_nofile_limit()  # the connection caps (guard.py) stay below this
    log.info("open-files limit %d", fds)
    metrics = PeerMetrics(config.node)
    role = run_login if config.role == "login" else run_node

    async def guarded() -> None:
        loop = asyncio.get_running_loop()
        limiter = RateLimitedLog(logging.getLogger("testbed.peer.loop"))
        install_loop_handler(loop, limiter)
        flusher = loop.create_task(flush_periodically(limiter))
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        task = asyncio.create_task(role(config, metrics))
        await asyncio.wait([task, asyncio.create_task(stop.wait())],
                           return_when=asyncio.FIRST_COMPLETED)
        if task.done() and task.exception():
            raise task.exception()  # type: ignore[misc]
        task.cancel()
        flusher.cancel()

    asyncio.run(guarded())
    return 0
