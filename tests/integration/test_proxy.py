"""A proxy-only corporate site with a real tinyproxy: its PCs reach the outside only by
HTTP CONNECT through the proxy, which leaves through the site NAT's public address."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.integration.traffic import udp_burst as shared_udp_burst

pytestmark = pytest.mark.root

CORP_SITE = """
nodes:
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

WEB_PORT = 8000



def udp_burst(lab, sender: str, receiver: str, packets: int = 20) -> tuple[int, str]:
    """(received count, source addresses) of a burst from sender to receiver."""
    count, senders, _ = shared_udp_burst(lab, sender, receiver, packets)
    return count, " ".join(senders)


def web_log_clients(log: Path) -> list[str]:
    """Client addresses of the GET requests http.server logged (`ADDR - - [date] "GET ...`)."""
    return re.findall(r"^(\S+) - - \[[^]]*\] \"GET ", log.read_text(), flags=re.MULTILINE)


def curl(lab, node: str, *args: str, seconds: int = 5) -> subprocess.CompletedProcess[str]:
    return lab.exec(node, "curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}",
                    "-m", str(seconds), *args, timeout=seconds + 10)


def test_proxy_only_site_reaches_the_web_only_through_http_connect(make_lab, tmp_path) -> None:
    lab = make_lab(CORP_SITE)
    url = f"http://{lab.addr('web')}:{WEB_PORT}/"
    proxy = f"http://{lab.addr('corp-proxy')}:8888"
    public = lab.addr("corp-fw")  # the NAT's uplink (outside) address
    log = tmp_path / "web.log"
    with open(log, "w") as err:
        web = lab.popen("web", sys.executable, "-u", "-m", "http.server", str(WEB_PORT),
                        "--bind", "0.0.0.0", stdout=subprocess.DEVNULL, stderr=err)
    try:
        # control: a public host reaches the web server directly (also waits until it is up)
        deadline = time.monotonic() + 10
        while True:
            control = curl(lab, "outsider", url, seconds=2)
            if control.stdout == "200" or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert control.stdout == "200", control.stderr
        assert web_log_clients(log) == [lab.addr("outsider")]

        for pc in ("pc1", "pc2"):
            # the PC is on a working LAN: it reaches its proxy (control) ...
            assert lab.exec(pc, "ping", "-c", "1", "-W", "2",
                            lab.addr("corp-proxy")).returncode == 0
            # ... but direct TCP to the outside is dropped by the site firewall
            direct = curl(lab, pc, url, seconds=3)
            assert direct.returncode != 0 and direct.stdout != "200", direct
            # HTTP CONNECT through tinyproxy gets out
            tunnelled = curl(lab, pc, "-p", "-x", proxy, url, seconds=10)
            assert tunnelled.returncode == 0 and tunnelled.stdout == "200", tunnelled

        # the direct attempts never arrived; the two tunnels came from the NAT's public address
        # (not from a PC's or the proxy's private address)
        clients = web_log_clients(log)
        assert clients == [lab.addr("outsider"), public, public], clients
        assert public != lab.addr("corp-proxy") and not public.startswith("10.")

        proxy_log = (lab.state.node_dir("corp-proxy") / "tinyproxy.log").read_text()
        assert proxy_log.count("CONNECT") >= 2, proxy_log[-2000:]
    finally:
        web.kill()
        web.wait(5)


def test_udp_from_the_proxy_only_site_is_blocked(make_lab) -> None:
    lab = make_lab(CORP_SITE)
    # control: UDP from a public host arrives, from its own address
    received, senders = udp_burst(lab, "outsider", "web")
    assert received == 20 and senders == lab.addr("outsider")
    # control: UDP inside the corporate LAN works (the PCs' network is fine)
    received, senders = udp_burst(lab, "pc1", "pc2")
    assert received == 20 and senders == lab.addr("pc1")
    for pc in ("pc1", "pc2"):
        received, senders = udp_burst(lab, pc, "web")
        assert received == 0, f"{received} datagrams from {senders} got out of {pc}"
