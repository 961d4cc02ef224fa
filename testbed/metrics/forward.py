"""Prometheus's web UI on the machine's loopback while its server lives in the lab's
management namespace.

A TCP forwarder in the testbed's own process: it listens on 127.0.0.1 in the machine's
namespace and opens each upstream connection from a socket created inside the management
namespace (a socket keeps the namespace it was created in). No route, bridge or NAT joins
the namespaces, so nothing of the emulated network can reach the machine's interfaces.
"""

from __future__ import annotations

import contextlib
import socket
import threading

from testbed.errors import LabError
from testbed.process import namespaces


class LoopbackForwarder:
    def __init__(self, namespace: str, target: tuple[str, int], port: int = 9090,
                 tries: int = 50) -> None:
        self.namespace = namespace
        self.target = target
        self.listener = _listen(port, tries)
        self.port = self.listener.getsockname()[1]
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._accept, name="prometheus-forward",
                                        daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

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
        with namespaces.inside(self.namespace):
            upstream = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
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


def _listen(port: int, tries: int) -> socket.socket:
    """127.0.0.1:port, or the next free port (two runs side by side)."""
    for candidate in range(port, port + tries):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", candidate))
        except OSError:
            sock.close()
            continue
        sock.listen(32)
        return sock
    raise LabError(f"no free loopback port in {port}..{port + tries - 1} for Prometheus's UI")


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
