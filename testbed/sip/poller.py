"""The UAs' exporter: asks every baresip over its control interface, serves /metrics.

One process in the lab's management namespace (the management ports are isolated from
each other, so only the hub reaches every node), polling all UAs concurrently, so a
rebooting node (no answer) costs one timeout, not one per node. Series:

- `sip_ua_registered{node,kind,group}`: 1 while the UA itself reports its registration
  OK (baresip's `reginfo`), 0 when it reports otherwise or does not answer (the host is
  down, or baresip is not running yet);
- `sip_ua_up{node}`: 1 when its control interface answered this poll;
- `sip_ua_info{node,kind,group}`: 1 for every UA of the topology (the denominator);
- `sip_ua_calls_total{node,side}`, `sip_ua_calls_failed_total{node,side}`: calls placed
  through it (testbed/sip/calls.py), and those that got no media through;
- `sip_registrar_cpu_seconds_total{node}`: CPU time of the registrar's processes
  (testbed/sip/cpu.py), which Kamailio's own statistics do not give.

Run: python -m testbed.sip.poller CONFIG.json (written by testbed/sip/monitor.py).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from testbed.sip.cpu import NamespaceCpu
from testbed.sip.ctrl import command, is_registered


class State:
    def __init__(self, uas: list[dict[str, Any]],
                 registrars: list[dict[str, str]] | None = None) -> None:
        self.uas = uas
        self.registrars = registrars or []  # {"node", "netns": /run/netns/... path}
        self.cpu: dict[str, float] = {r["node"]: 0.0 for r in self.registrars}
        self.meters = {r["node"]: NamespaceCpu(r["netns"]) for r in self.registrars}
        self.lock = threading.Lock()
        self.up: dict[str, int] = {ua["node"]: 0 for ua in uas}
        self.registered: dict[str, int] = dict(self.up)
        self.polls = 0
        self.calls: dict[str, int] = dict.fromkeys(self.up, 0)
        self.calls_failed: dict[str, int] = dict.fromkeys(self.up, 0)
        self.by_node = {ua["node"]: ua for ua in uas}
        # baresip's ctrl_tcp serves one connection at a time (a new one drops the old):
        # a UA in a call is not polled, and a call waits for a poll in flight to end
        self.in_call: set[str] = set()
        self.polling: set[str] = set()

    def render(self) -> str:
        """Prometheus text format, each family's samples together."""
        with self.lock:
            values = {"registered": dict(self.registered), "up": dict(self.up),
                      "info": dict.fromkeys(self.up, 1)}
            polls = self.polls
            calls = {"calls_total": dict(self.calls),
                     "calls_failed_total": dict(self.calls_failed)}
        lines = []
        for name, by_node in values.items():
            lines.append(f"# TYPE sip_ua_{name} gauge")
            for ua in self.uas:
                labels = (f'node="{ua["node"]}",kind="sip_ua"'
                          + (f',group="{ua["group"]}"' if ua.get("group") else ""))
                lines.append(f"sip_ua_{name}{{{labels}}} {by_node[ua['node']]}")
        for name, by_node in calls.items():
            lines.append(f"# TYPE sip_ua_{name} counter")
            lines += [f'sip_ua_{name}{{node="{node}",side="caller"}} {count}'
                      for node, count in by_node.items()]
        with self.lock:
            cpu = dict(self.cpu)
        if cpu:
            lines.append("# TYPE sip_registrar_cpu_seconds_total counter")
            lines += [f'sip_registrar_cpu_seconds_total{{node="{node}"}} {seconds:.2f}'
                      for node, seconds in cpu.items()]
        lines += ["# TYPE sip_ua_polls_total counter", f"sip_ua_polls_total {polls}"]
        return "\n".join(lines) + "\n"


async def poll_once(state: State, timeout: float) -> None:
    async def one(ua: dict[str, Any]) -> tuple[str, int, int] | None:
        node = ua["node"]
        with state.lock:
            if node in state.in_call:
                return None  # in a call: it answered its caller, keep the last state
            state.polling.add(node)
        try:
            reply = await command(ua["host"], ua["port"], "reginfo", timeout=timeout)
        except (TimeoutError, OSError, ValueError, asyncio.IncompleteReadError):
            return node, 0, 0
        finally:
            with state.lock:
                state.polling.discard(node)
        return node, 1, int(is_registered(reply))

    results = await asyncio.gather(*(one(ua) for ua in state.uas))
    cpu = {}
    for node, meter in state.meters.items():
        seconds = await asyncio.to_thread(meter.read)
        if seconds is not None:
            cpu[node] = seconds
    with state.lock:
        state.cpu.update(cpu)
        for result in results:
            if result is not None:
                node, up, registered = result
                state.up[node], state.registered[node] = up, registered
        state.polls += 1


async def poll_forever(state: State, interval: float) -> None:
    loop = asyncio.get_running_loop()
    while True:
        began = loop.time()
        await poll_once(state, timeout=max(0.2, interval * 0.8))
        await asyncio.sleep(max(0.0, interval - (loop.time() - began)))


def call(state: State, query: dict[str, list[str]]) -> dict[str, Any]:
    """One call from a UA to another's AOR, counted as the caller's (runs in a handler
    thread, so calls side by side do not hold back the polls or each other)."""
    from testbed.sip.calls import place_call

    caller, callee = query["from"][0], query["to"][0]
    unknown = [name for name in (caller, callee) if name not in state.by_node]
    if unknown:
        return {"ok": False, "reason": f"unknown UA {unknown[0]}"}
    ua = state.by_node[caller]
    with state.lock:
        if caller in state.in_call:
            return {"ok": False, "reason": f"{caller} is in a call already"}
        state.in_call.add(caller)
    while True:
        with state.lock:
            if caller not in state.polling:
                break
        time.sleep(0.02)
    try:
        outcome = asyncio.run(place_call(ua["host"], ua["port"], state.by_node[callee]["aor"],
                                         float(query["seconds"][0]),
                                         float(query.get("setup", ["30"])[0])))
    except (OSError, ValueError, asyncio.IncompleteReadError) as exc:
        outcome = {"ok": False, "reason": f"the caller's UA did not answer: {exc}"}
    with state.lock:
        state.in_call.discard(caller)
        state.calls[caller] += 1
        state.calls_failed[caller] += 0 if outcome["ok"] else 1
    return outcome


def serve(state: State, host: str, port: int) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the http.server API
            path, _, query = self.path.partition("?")
            if path == "/call":
                body = json.dumps(call(state, urllib.parse.parse_qs(query))).encode()
                kind = "application/json"
            elif path == "/metrics":
                body, kind = state.render().encode(), "text/plain; version=0.0.4"
            else:
                self.send_error(404, "/metrics or /call?from=UA&to=UA&seconds=S only")
                return
            self.send_response(200)
            self.send_header("Content-Type", kind)
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
    state = State(config["uas"], config.get("registrars"))
    serve(state, config["host"], int(config["port"]))
    asyncio.run(poll_forever(state, float(config["interval"])))


if __name__ == "__main__":
    main()
