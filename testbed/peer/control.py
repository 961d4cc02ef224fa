"""The peer's HTTP endpoint on its management address: GET /metrics (Prometheus text) and
a tiny control API for tests and scenario steps: GET /status, GET /lookup?user=U,
GET /call?to=U&seconds=S (JSON). Served by the peer's own event loop: no extra thread,
which matters when a thousand peers share one machine."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from urllib.parse import parse_qs, urlsplit

Handler = Callable[[dict[str, str]], Awaitable[dict[str, object] | str]]


class ControlServer:
    def __init__(self, routes: dict[str, Handler]) -> None:
        self.routes = routes

    async def serve(self, host: str, port: int) -> asyncio.Server:
        return await asyncio.start_server(self.handle, host, port)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            method, target, _ = request.split(b"\r\n", 1)[0].decode().split(" ", 2)
            url = urlsplit(target)
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            handler = self.routes.get(url.path) if method == "GET" else None
            body: dict[str, object] | str
            if handler is None:
                status, body = "404 Not Found", {"error": f"no route {url.path}",
                                                 "routes": sorted(self.routes)}
            else:
                try:
                    status, body = "200 OK", await handler(query)
                except (KeyError, ValueError) as exc:
                    status, body = "400 Bad Request", {"error": str(exc)}
            if isinstance(body, str):
                data, kind = body.encode(), "text/plain; version=0.0.4"
            else:
                data, kind = json.dumps(body).encode(), "application/json"
            writer.write(f"HTTP/1.0 {status}\r\nContent-Type: {kind}\r\n"
                         f"Content-Length: {len(data)}\r\n\r\n".encode() + data)
            await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError,
                ValueError, ConnectionError):
            pass
        finally:
            writer.close()
