"""Prometheus's web UI on the machine's loopback while its server lives in the lab's
management namespace.

A TCP forwarder in the testbed's own process: it listens on 127.0.0.1 in the machine's
namespace and opens each upstream connection from a socket created inside the management
namespace (a socket keeps the namespace it was created in). No route, bridge or NAT joins
the namespaces, so nothing of the emulated network can reach the machine's interfaces.

Where the UI must be reachable from outside the machine's loopback (the lab VM, whose
port 9090 Vagrant forwards to the laptop's loopback), TESTBED_UI_ADDRESS (or `testbed run
--ui-address`) names the address to listen on instead; playbooks/lab.yml sets it to
0.0.0.0 in the VM only. The forwarder still only carries connections to Prometheus.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from collections.abc import Mapping

from testbed.errors import BackendError, LabError
from testbed.process import namespaces

LOOPBACK = "127.0.0.1"


def default_ui_address(environ: Mapping[str, str] = os.environ) -> str:
    """Where Prometheus's UI listens: TESTBED_UI_ADDRESS, else the machine's loopback."""
    return environ.get("TESTBED_UI_ADDRESS", "").strip() or LOOPBACK


def ui_url(address: str, port: int) -> str:
    """The URL to open on this machine for a UI listening on address:port (a UI on
    every interface is opened on loopback)."""
    host = LOOPBACK if address in ("0.0.0.0", "") else address
    return f"http://{host}:{port}"


class LoopbackForwarder:
    def __init__(self, namespace: str, target: tuple[str, int], port: int = 9090,
                 tries: int = 50, address: str = LOOPBACK) -> None:
        self.namespace = namespace
        self.target = target
        self.address = address
        self.listener = _listen(address, port, tries)
        self.port = self.listener.getsockname()[1]
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._accept, name="prometheus-forward",
                                        daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return ui_url(self.address, self.port)

    def close(self) -> None:
        self._closed.set()
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        try:
            with namespaces.inside(self.namespace):
                upstream = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        except (BackendError, OSError):  # the lab is going (or gone): just hang up
            client.close()
            return
        try:
            upstream.settimeout(5)
            upstream.connect(self.target)
            upstream.settimeout(None)
        except OSError:
            client.close()
            upstream.close()
            return
        back = threading.Thread(target=_pump, args=(upstream, client), daemon=True)
        back.start()
        _pump(client, upstream)
        back.join(timeout=60)


def _listen(address: str, port: int, tries: int) -> socket.socket:
    """address:port, or the next free port (two runs side by side)."""
    for candidate in range(port, port + tries):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((address, candidate))
        except socket.gaierror:
            sock.close()
            raise LabError(f"Prometheus UI address {address!r} (TESTBED_UI_ADDRESS or "
                           "--ui-address) is not an IPv4 address of this machine") from None
        except OSError:
            sock.close()
            continue
        sock.listen(32)
        return sock
    raise LabError(f"no free port on {address} in {port}..{port + tries - 1} for "
                   "Prometheus's UI")


def _pump(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        for sock in (source, sink):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            source.close()
