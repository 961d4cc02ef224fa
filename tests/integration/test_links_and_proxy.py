"""Link shaping measured with iperf3 and ping, the missing-netem error, and the
proxy-only corporate site with a real tinyproxy."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from tests.conftest import run_cli

pytestmark = pytest.mark.root


def iperf(lab, client: str, server: str, seconds: int, reverse: bool = False) -> float:
    """Bits per second received, measured by iperf3 over TCP."""
    daemon = lab.popen(server, "iperf3", "-s", "-1", stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    try:
        argv = ["iperf3", "-c", lab.addr(server), "-t", str(seconds), "-J", "-O", "1"]
        run = lab.exec(client, *argv, *(["-R"] if reverse else []), timeout=seconds + 30)
        assert run.returncode == 0, run.stdout[-500:] + run.stderr
        return float(json.loads(run.stdout)["end"]["sum_received"]["bits_per_second"])
    finally:
        daemon.kill()
        daemon.wait(5)


@pytest.mark.parametrize(("rate", "bits", "seconds"), [
    ("512kbit", 512_000, 8),
    ("10Mbit", 10_000_000, 5),
])
def test_bandwidth_is_within_ten_percent(make_lab, rate: str, bits: int, seconds: int) -> None:
    lab = make_lab(f"""
nodes:
  core: {{kind: router}}
  a: {{kind: host, uplink: {{to: core, bandwidth: {rate}}}}}
  b: {{kind: host, uplink: {{to: core, bandwidth: 1Gbit}}}}
""")
    measured = iperf(lab, "a", "b", seconds)
    assert 0.9 * bits <= measured <= 1.1 * bits, f"{measured / 1e3:.0f} kbit/s for {rate}"


def test_asymmetric_adsl_line(make_lab) -> None:
    lab = make_lab("""
nodes:
  core: {kind: router}
  home: {kind: host, uplink: {to: core, up: 512kbit, down: 8Mbit}}
  server: {kind: host, uplink: {to: core, bandwidth: 1Gbit}}
""")
    up = iperf(lab, "home", "server", 6)
    down = iperf(lab, "home", "server", 4, reverse=True)
    assert 0.9 * 512_000 <= up <= 1.1 * 512_000, up
    assert 0.9 * 8_000_000 <= down <= 1.1 * 8_000_000, down


def test_loss_drops_about_the_configured_share(make_lab) -> None:
    lab = make_lab("""
nodes:
  core: {kind: router}
  lossy: {kind: host, uplink: {to: core, loss: 20%}}
  clean: {kind: host, uplink: {to: core}}
  server: {kind: host, uplink: {to: core}}
  lan: {kind: switch, uplink: {to: core}}
  lossy-lan: {kind: host, uplink: {to: lan, loss: 20%}}
""")

    def lost(node: str) -> float:
        run = lab.exec(node, "ping", "-q", "-c", "300", "-i", "0.005", "-W", "1",
                       lab.addr("server"), timeout=60)
        summary = next(line for line in run.stdout.splitlines() if "packet loss" in line)
        return float(summary.split("%")[0].split()[-1]) / 100

    # a ping is lost if either the request or the reply is dropped: 1 - 0.8^2 = 36 %
    assert 0.26 <= lost("lossy") <= 0.46
    assert 0.26 <= lost("lossy-lan") <= 0.46  # the switch side drops too (bridge hook)
    assert lost("clean") == 0.0


def test_delay_without_netem_fails_clearly_and_creates_nothing(tmp_path) -> None:
    topology = tmp_path / "delay.yaml"
    topology.write_text("""name: dly
nodes:
  core: {kind: router}
  a: {kind: host, uplink: {to: core, delay: 20ms}}
""")
    have_netem = subprocess.run(["unshare", "--net", "tc", "qdisc", "add", "dev", "lo",
                                 "root", "netem", "delay", "1ms"],
                                capture_output=True).returncode == 0
    if have_netem:
        pytest.skip("this kernel has sch_netem: delay is applied, not refused")
    result = run_cli("up", str(topology), state_dir=tmp_path / "state")
    assert result.returncode == 1
    assert "sch_netem" in result.stderr and "delay" in result.stderr
    assert "tb-dly-" not in subprocess.run(["ip", "netns", "list"], capture_output=True,
                                           text=True).stdout


CORP = """
nodes:
  core: {kind: router}
  web: {kind: host, uplink: {to: core}}
  outsider: {kind: host, uplink: {to: core}}
  corp-fw: {kind: nat, firewall: {egress: proxy-only, proxy: corp-proxy}, uplink: {to: core}}
  corp-lan: {kind: switch, uplink: {to: corp-fw}}
  corp-proxy: {kind: proxy, uplink: {to: corp-lan}}
  pc1: {kind: host, uplink: {to: corp-lan}}
  pc2: {kind: host, uplink: {to: corp-lan}}
"""

WEB = r"""
import http.server, sys
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = self.client_address[0].encode()
        self.send_response(200); self.send_header("Content-Length", str(len(body)))
        self.end_headers(); self.wfile.write(body)
    def log_message(self, *args): pass
http.server.HTTPServer(("0.0.0.0", 8000), Handler).serve_forever()
"""


def test_proxy_only_site_gets_out_only_through_http_connect(make_lab) -> None:
    lab = make_lab(CORP)
    web = lab.popen("web", sys.executable, "-c", WEB, stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.8)
        url = f"http://{lab.addr('web')}:8000/"
        control = lab.exec("outsider", "curl", "-s", "-m", "5", url)
        assert control.returncode == 0 and control.stdout == lab.addr("outsider")
        direct = lab.exec("pc1", "curl", "-s", "-m", "3", url)
        assert direct.returncode != 0  # the firewall drops direct traffic
        proxy = f"http://{lab.addr('corp-proxy')}:8888"
        tunnelled = lab.exec("pc1", "curl", "-s", "-m", "10", "-p", "-x", proxy, url)
        assert tunnelled.returncode == 0, tunnelled.stderr
        # the web server saw the site's public (NAT) address, i.e. the proxy's way out
        assert tunnelled.stdout == lab.addr("corp-fw")
        assert _udp_reaches(lab, "outsider", "web")  # control
        assert not _udp_reaches(lab, "pc2", "web")
        assert lab.exec("pc2", "ping", "-c", "1", "-W", "1", lab.addr("web")).returncode != 0
        log = (lab.state.node_dir("corp-proxy") / "tinyproxy.log").read_text()
        assert "CONNECT" in log
    finally:
        web.kill()
        web.wait(5)


UDP_SINK = r"""
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("0.0.0.0", 9999))
s.settimeout(2)
try:
    print(s.recv(100).decode())
except socket.timeout:
    print("nothing")
"""


def _udp_reaches(lab, sender: str, receiver: str) -> bool:
    sink = lab.popen(receiver, sys.executable, "-c", UDP_SINK, stdout=subprocess.PIPE,
                     stderr=subprocess.DEVNULL)
    time.sleep(0.3)
    code = f"import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(" \
           f"b'hello', ('{lab.addr(receiver)}', 9999))"
    lab.exec(sender, sys.executable, "-c", code)
    out, _ = sink.communicate(timeout=10)
    return out.strip() == "hello"
