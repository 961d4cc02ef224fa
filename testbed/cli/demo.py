"""`testbed demo`: the README's main job on the built-in default topology.

Today it builds the default 2007 lab, proves it works with real packets (a home PC behind
its NAT reaches the login server; the corporate site gets out only through its proxy), and
removes it. The outage scenarios (restart waves, Prometheus, reports) plug in here as they
land.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

DEFAULT_TOPOLOGY = Path(__file__).resolve().parents[2] / "topologies" / "skype-2007.yaml"


def add_parser(sub: Any) -> None:
    p = sub.add_parser("demo", help="build the default 2007 lab, check it, tear it down (root)",
                       description="The main job: build topologies/skype-2007.yaml, check it "
                                   "with real packets, then remove it (--keep leaves it up).")
    p.add_argument("--topology", default=str(DEFAULT_TOPOLOGY), help="topology file")
    p.add_argument("--set", dest="overrides", action="append", default=[],
                   metavar="NAME=VALUE", help="override a topology parameter")
    p.add_argument("--keep", action="store_true", help="leave the lab up afterwards")
    p.set_defaults(run=run)


def _in(ns: str, *argv: str, timeout: float = 15) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", "netns", "exec", ns, *argv], capture_output=True, text=True,
                          timeout=timeout, check=False)


def run(args: argparse.Namespace) -> int:
    from testbed.backends.netns import NetnsBackend
    from testbed.cli.common import load
    from testbed.lab.lifecycle import bring_up, tear_down
    from testbed.lab.state import LabState, state_root
    from testbed.plan.build import build_plan
    from testbed.progress import Progress

    args.topology = str(args.topology)
    topology = load(args)
    plan = build_plan(topology)
    state = LabState(state_root(args.state_dir), topology.name)
    backend = NetnsBackend()
    print(f"== building {topology.source}: {len(topology.nodes)} nodes", file=sys.stderr)
    began = time.monotonic()
    bring_up(topology, plan, backend, state, Progress())
    print(f"== lab {topology.name!r} up in {time.monotonic() - began:.1f}s", file=sys.stderr)
    ok = True
    try:
        ok = _checks(plan)
    finally:
        if args.keep:
            print(f"== lab left up: testbed inspect --lab {topology.name}; "
                  f"testbed down {topology.name}")
        else:
            tear_down(backend, state, Progress())
            print(f"== lab {topology.name!r} removed", file=sys.stderr)
    return 0 if ok else 1


def _checks(plan: Any) -> bool:
    nodes = plan.nodes
    login = nodes.get("login")
    home = next((n for n in nodes.values() if n.realm.startswith("nat:home")), None)
    results = []
    if login and home:
        target = login.primary_address()
        r = _in(home.namespace, "ping", "-c", "1", "-W", "3", target)
        results.append((f"{home.name} (behind its NAT) pings the login server {target}",
                        r.returncode == 0))
    proxy = next((n for n in nodes.values() if n.kind == "proxy"), None)
    corp = next((n for n in nodes.values()
                 if n.realm == (proxy.realm if proxy else None) and n.kind == "peer"), None)
    if proxy and corp and login:
        web = _start_web(login.namespace)
        try:
            url = f"http://{login.primary_address()}:8000/"
            direct = _in(corp.namespace, "curl", "-s", "-o", "/dev/null", "-m", "3", url)
            results.append((f"{corp.name} cannot reach the internet directly",
                            direct.returncode != 0))
            port = proxy.node.proxy.port if proxy.node.proxy else 8888
            via = _in(corp.namespace, "curl", "-s", "-o", "/dev/null", "-m", "5", "-p",
                      "-x", f"http://{proxy.primary_address()}:{port}", url)
            results.append((f"{corp.name} reaches it through the proxy (HTTP CONNECT)",
                            via.returncode == 0))
        finally:
            web.terminate()
            web.wait(5)
    for text, passed in results:
        print(f"   [{'ok' if passed else 'FAILED'}] {text}")
    return all(p for _, p in results)


def _start_web(namespace: str) -> subprocess.Popen[bytes]:
    web = subprocess.Popen(["ip", "netns", "exec", namespace, sys.executable, "-m",
                            "http.server", "8000", "--bind", "0.0.0.0"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.8)
    return web
