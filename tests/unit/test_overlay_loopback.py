"""Login server, supernodes and clients together over loopback (no lab, no root).

Real sockets on 127.0.0.x addresses; the lab-level tests (NATs, proxies, relays seen in
pcaps) build on this."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest

from testbed.peer.auth import TokenSigner, TokenVerifier
from testbed.peer.client import Client, _call_length
from testbed.peer.hostcache import HostCache
from testbed.peer.login_server import LoginServer, LoginSettings
from testbed.peer.metrics import PeerMetrics
from testbed.peer.policies import POLICIES, OverloadPolicy
from testbed.peer.supernode import Supernode, SupernodeSettings

PORT = 34567


async def _overlay(tmp: Path, supernodes: int, clients: int, settings: SupernodeSettings):  # noqa: ANN202
    signer = TokenSigner.generate()
    users = {f"u{i}": f"pw{i}" for i in range(clients)}
    login = LoginServer(users, signer, LoginSettings(), PeerMetrics("login"))
    listener = await login.serve("127.0.0.1", 0)
    login_addr = f"127.0.0.1:{listener.sockets[0].getsockname()[1]}"
    sn_addrs = [f"127.0.1.{i + 1}:{PORT}" for i in range(supernodes)]
    sns = []
    for i in range(supernodes):
        sn = Supernode(f"sn{i}", f"127.0.1.{i + 1}", TokenVerifier(signer.public_bytes()),
                       settings, PeerMetrics(f"sn{i}"), peers=lambda: sn_addrs)
        await sn.start()
        sns.append(sn)
    policy = POLICIES["fixed"].with_time_scale(0.05)
    made = [Client(user=u, password=p, login_server=login_addr,
                   cache=HostCache(tmp / u / "hostcache.json", sn_addrs[:1]),
                   policy=policy, metrics=PeerMetrics(u), rng=random.Random(i))
            for i, (u, p) in enumerate(users.items())]
    return listener, sns, made


def test_clients_log_in_through_supernodes_and_find_each_other(tmp_path: Path) -> None:
    async def main() -> None:
        settings = SupernodeSettings(port=PORT, extra_tcp_ports=())
        listener, sns, clients = await _overlay(tmp_path, 3, 6, settings)
        try:
            await asyncio.wait_for(asyncio.gather(*(c.login() for c in clients)), 20)
            assert all(c.attached is not None for c in clients)
            assert sum(len(sn.children) for sn in sns) == 6
            # clients learnt the other supernodes from JOIN_OK
            assert len(clients[0].cache.entries) == 3
            found = await clients[0].lookup("u5")
            assert found is not None and found["found"] is True
            missing = await clients[0].lookup("nobody")
            assert missing is not None and missing["found"] is False
        finally:
            for sn in sns:
                await sn.stop()
            listener.close()

    asyncio.run(main())


def test_host_cache_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "hostcache.json"
    cache = HostCache(path, ["198.18.0.6:33033"])
    cache.add("198.18.0.10:33033")
    cache.promote("198.18.0.10:33033")
    again = HostCache(path, ["198.18.0.6:33033"])
    assert again.entries == ["198.18.0.10:33033", "198.18.0.6:33033"]


def test_full_supernode_answers_busy_and_clients_go_elsewhere(tmp_path: Path) -> None:
    async def main() -> None:
        settings = SupernodeSettings(port=PORT, extra_tcp_ports=(), max_children=2,
                                     overload=OverloadPolicy(retry_after=0.2))
        listener, sns, clients = await _overlay(tmp_path, 3, 5, settings)
        try:
            await asyncio.wait_for(asyncio.gather(*(c.login() for c in clients)), 30)
            assert max(len(sn.children) for sn in sns) <= 2
            assert sum(len(sn.children) for sn in sns) == 5
            busy = sum(sn.metrics.registry.get_sample_value(
                "supernode_joins_total", {"result": "busy"}) or 0 for sn in sns)
            assert busy >= 1
        finally:
            for sn in sns:
                await sn.stop()
            listener.close()

    asyncio.run(main())


def test_a_connect_the_proxy_never_answers_is_closed_not_left_open(tmp_path: Path) -> None:
    """A client that gives up on a CONNECT hangs up: a proxy that is slow to reach a
    supernode must not be left holding one connection per retry (it has only so many)."""
    async def main() -> None:
        opened: list[asyncio.StreamReader] = []
        closed = asyncio.Event()

        async def silent_proxy(reader: asyncio.StreamReader,
                               writer: asyncio.StreamWriter) -> None:
            opened.append(reader)
            await reader.readuntil(b"\r\n\r\n")  # the CONNECT request; never answered
            if await reader.read() == b"":  # EOF: the client hung up
                closed.set()
            writer.close()

        proxy = await asyncio.start_server(silent_proxy, "127.0.0.1", 0)
        address = f"127.0.0.1:{proxy.sockets[0].getsockname()[1]}"
        policy = POLICIES["2007"].with_time_scale(0.05)  # probe timeout 0.25 s
        client = Client(user="u", password="p", login_server="127.0.0.1:1",
                        cache=HostCache(tmp_path / "hostcache.json", ["198.18.0.6:33033"]),
                        policy=policy, metrics=PeerMetrics("u"), rng=random.Random(1),
                        proxy=address)
        try:
            result = await client._join("198.18.0.6:33033", "198.18.0.6", 33033)
            assert result.reason == "timeout"  # type: ignore[union-attr]
            await asyncio.wait_for(closed.wait(), 2)  # the proxy saw the client hang up
            assert len(opened) == 1
        finally:
            proxy.close()

    asyncio.run(main())


def test_the_callee_hangs_up_when_the_caller_does(tmp_path: Path) -> None:
    """The CALL carries its length: the answering side streams that long, not for ever."""
    async def main() -> None:
        settings = SupernodeSettings(port=PORT, extra_tcp_ports=())
        listener, sns, clients = await _overlay(tmp_path, 1, 2, settings)
        caller, callee = clients
        tasks = [asyncio.get_running_loop().create_task(c.run()) for c in clients]
        try:
            async def ready() -> None:
                while not all(c.attached and c.media_seen for c in clients):
                    await asyncio.sleep(0.05)
            await asyncio.wait_for(ready(), 20)
            result = await asyncio.wait_for(caller.call("u1", 1.0), 10)
            assert result["ok"], result
            await asyncio.sleep(1.0)
            assert not callee._calls, "the callee is still streaming after the call ended"
            (stream,) = callee.media.streams.values()  # type: ignore[union-attr]
            assert 20 <= stream.sent <= 60  # ~40 packets: 1 s at 40 packets/s
        finally:
            for task in tasks:
                task.cancel()
            for sn in sns:
                await sn.stop()
            listener.close()

    asyncio.run(main())


@pytest.mark.parametrize(("asked", "length"), [
    (5, 5.0), (2.5, 2.5), (None, 60.0), ("10", 60.0), (True, 60.0), (0, 60.0), (-3, 60.0),
    (float("nan"), 60.0), (float("inf"), 60.0), (1e9, 60.0),
])
def test_a_call_length_from_the_network_is_a_sane_number_or_the_default(
        asked: object, length: float) -> None:
    assert _call_length(asked, 60.0) == length
