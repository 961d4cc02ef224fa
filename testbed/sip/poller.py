"""The UAs' exporter: asks every baresip over its control interface, serves /metrics.

One process in the lab's management namespace (the management ports are isolated from
each other, so only the hub reaches every node), polling all UAs concurrently, so a
rebooting node (no answer) costs one timeout, not one per node. Series:

- `sip_ua_registered{node,kind,group}`: 1 while the UA itself reports its registration
  OK (baresip's `reginfo`), 0 when it reports otherwise or does not answer (the host is
  down, or baresip is not running yet);
- `sip_ua_up{node}`: 1 when its control interface answered this poll;
- `sip_ua_info{node,kind,group}`: 1 for every UA of the topology (the denominator).

Run: python -m testbed.sip.poller CONFIG.json (written by testbed/sip/monitor.py).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from testbed.sip.ctrl import command, is_registered


class State:
    def __init__(self, uas: list[dict[str, Any]]) -> None:
        self.uas = uas
        self.lock = threading.Lock()
        self.up: dict[str, int] = {ua["node"]: 0 for ua in uas}
        self.registered: dict[str, int] = dict(self.up)
        self.polls = 0

    def render(self) -> str:
        """Prometheus text format, each family's samples together."""
        with self.lock:
            values = {"registered": dict(self.registered), "up": dict(self.up),
                      "info": dict.fromkeys(self.up, 1)}
            polls = self.polls
        lines = []
        for name, by_node in values.items():
            lines.append(f"# TYPE sip_ua_{name} gauge")
            for ua in self.uas:
                labels = (f'node="{ua["node"]}",kind="sip_ua"'
                          + (f',group="{ua["group"]}"' if ua.get("group") else ""))
                lines.append(f"sip_ua_{name}{{{labels}}} {by_node[ua['node']]}")
        lines += ["# TYPE sip_ua_polls_total counter", f"sip_ua_polls_total {polls}"]
        return "\n".join(lines) + "\n"


async def poll_once(state: State, timeout: float) -> None:
    async def one(ua: dict[str, Any]) -> tuple[str, int, int]:
        try:
            reply = await command(ua["host"], ua["port"], "reginfo", timeout=timeout)
        except (TimeoutError, OSError, ValueError, asyncio.IncompleteReadError):
            return ua["node"], 0, 0
        return ua["node"], 1, int(is_registered(reply))

    results = await asyncio.gather(*(one(ua) for ua in state.uas))
    with state.lock:
        for node, up, registered in results:
            state.up[node], state.registered[node] = up, registered
        state.polls += 1


async def poll_forever(state: State, interval: float) -> None:
    loop = asyncio.get_running_loop()
    while True:
        began = loop.time()
        await poll_once(state, timeout=max(0.2, interval * 0.8))
        await asyncio.sleep(max(0.0, interval - (loop.time() - began)))


def serve(state: State, host: str, port: int) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the http.server API
            if self.path.split("?")[0] != "/metrics":
                self.send_error(404, "/metrics only")
                return
            body = state.render().encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer((host, port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", type=Path)
    args = parser.parse_args(argv)
    config = json.loads(args.config.read_text())
    state = State(config["uas"])
    serve(state, config["host"], int(config["port"]))
    asyncio.run(poll_forever(state, float(config["interval"])))


if __name__ == "__main__":
    main()
