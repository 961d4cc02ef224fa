"""Proxy-only and reachability checks shared by the native lab (test_proxy.py) and the
replayed containerlab export (test_clab_replay.py), so both answer the same questions.

The lab object needs `exec`, `popen`, `python`, `addr(node)` and `uplink_addr(node)`.
A proxy-only site: gateway `fw` (a nat with `firewall: {egress: proxy-only}`), its proxy
`proxy` (tinyproxy on 8888), PCs behind it; outside, a `web` host and an `outsider`.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.integration.traffic import udp_burst

Lab = Any  # tests.conftest.RunningLab or tests.integration.clab_replay.ReplayLab
WEB_PORT = 8000

CORP_SITE = """
  internet: {kind: router}
  web: {kind: host, uplink: {to: internet}}
  outsider: {kind: host, uplink: {to: internet}}
  corp-fw:
    kind: nat
    firewall: {egress: proxy-only, proxy: corp-proxy}
    uplink: {to: internet}
  corp-lan: {kind: switch, uplink: {to: corp-fw}}
  corp-proxy: {kind: proxy, uplink: {to: corp-lan}}
  pc1: {kind: peer, uplink: {to: corp-lan}}
  pc2: {kind: host, uplink: {to: corp-lan}}
"""


def web_log_clients(log: Path) -> list[str]:
    """Client addresses of the GET requests http.server logged (`ADDR - - [date] "GET ...`)."""
    return re.findall(r"^(\S+) - - \[[^]]*\] \"GET ", log.read_text(), flags=re.MULTILINE)


def curl(lab: Lab, node: str, *args: str, seconds: int = 5) -> subprocess.CompletedProcess[str]:
    return lab.exec(node, "curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}",
                    "-m", str(seconds), *args, timeout=seconds + 10)


def check_proxy_only_egress(lab: Lab, workdir: Path, proxy_log: Path, *, web: str = "web",
                            outsider: str = "outsider", fw: str = "corp-fw",
                            proxy: str = "corp-proxy", pcs: tuple[str, ...] = ("pc1", "pc2"),
                            internet: str = "internet") -> None:
    """PCs of a proxy-only site reach the web only by HTTP CONNECT through the proxy,
    which leaves through the site NAT's public address; direct TCP never arrives."""
    url = f"http://{lab.addr(web)}:{WEB_PORT}/"
    proxy_url = f"http://{lab.addr(proxy)}:8888"
    public = lab.uplink_addr(fw)
    log = workdir / f"web-{web}.log"
    with open(log, "w") as err:
        server = lab.popen(web, sys.executable, "-u", "-m", "http.server", str(WEB_PORT),
                           "--bind", "0.0.0.0", stdout=subprocess.DEVNULL, stderr=err)
    try:
        # control: a public host reaches the web server directly (also waits until it is up)
        deadline = time.monotonic() + 10
        while True:
            control = curl(lab, outsider, url, seconds=2)
            if control.stdout == "200" or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert control.stdout == "200", control.stderr
        assert web_log_clients(log) == [lab.addr(outsider)]

        for pc in pcs:
            # the PC is on a working LAN: it reaches its proxy (control) ...
            assert lab.exec(pc, "ping", "-c", "1", "-W", "2", lab.addr(proxy)).returncode == 0
            # ... but direct TCP to the outside is dropped by the site firewall
            direct = curl(lab, pc, url, seconds=3)
            assert direct.returncode != 0 and direct.stdout != "200", direct
            # HTTP CONNECT through tinyproxy gets out
            tunnelled = curl(lab, pc, "-p", "-x", proxy_url, url, seconds=10)
            assert tunnelled.returncode == 0 and tunnelled.stdout == "200", tunnelled

        # the direct attempts never arrived; the tunnels came from the NAT's public address
        # (not from a PC's or the proxy's private address)
        clients = web_log_clients(log)
        assert clients == [lab.addr(outsider)] + [public] * len(pcs), clients
        assert public != lab.addr(proxy)
        assert lab.exec(internet, "ip", "route", "get", lab.addr(proxy)).returncode != 0, \
            "the proxy's private address must not be routable from the internet"
        text = proxy_log.read_text()
        assert text.count("CONNECT") >= len(pcs), text[-2000:]
    finally:
        server.kill()
        server.wait(5)


def check_udp_blocked(lab: Lab, *, web: str = "web", outsider: str = "outsider",
                      pcs: tuple[str, ...] = ("pc1", "pc2")) -> None:
    """No UDP leaves a proxy-only site; UDP on its LAN and on the internet works."""
    received, senders, _ = udp_burst(lab, outsider, web, 20)
    assert received == 20 and senders == [lab.addr(outsider)]
    received, senders, _ = udp_burst(lab, pcs[0], pcs[1], 20)
    assert received == 20 and senders == [lab.addr(pcs[0])]
    for pc in pcs:
        received, senders, _ = udp_burst(lab, pc, web, 20)
        assert received == 0, f"{received} datagrams from {senders} got out of {pc}"


def check_reachable(lab: Lab, pairs: list[tuple[str, str]]) -> None:
    """Each (source, destination) pair pings across the emulated network."""
    failed = [(a, b) for a, b in pairs
              if lab.exec(a, "ping", "-c", "1", "-W", "2", lab.addr(b)).returncode != 0]
    assert not failed, f"no ping between {failed}"
