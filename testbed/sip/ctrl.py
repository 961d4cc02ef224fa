"""baresip's control interface (ctrl_tcp): JSON commands framed as netstrings."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

REGISTERED = re.compile(r"\x1b\[32mOK\b")  # reginfo prints a green OK per registered UA


def frame(command: str, params: str = "", token: str = "tb") -> bytes:
    body = json.dumps({"command": command, "params": params, "token": token}).encode()
    return str(len(body)).encode() + b":" + body + b","


async def read_frame(reader: asyncio.StreamReader) -> dict[str, Any]:
    length = int((await reader.readuntil(b":"))[:-1])
    body = await reader.readexactly(length + 1)
    return dict(json.loads(body[:-1]))


async def command(host: str, port: int, name: str, params: str = "",
                  timeout: float = 1.0) -> dict[str, Any]:
    """Send one command, return its response (events that arrive first are skipped)."""
    async def exchange() -> dict[str, Any]:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            writer.write(frame(name, params))
            await writer.drain()
            while True:
                message = await read_frame(reader)
                if message.get("response"):
                    return message
        finally:
            writer.close()
    return await asyncio.wait_for(exchange(), timeout)


def is_registered(reginfo: dict[str, Any]) -> bool:
    return bool(reginfo.get("ok")) and bool(REGISTERED.search(str(reginfo.get("data", ""))))
