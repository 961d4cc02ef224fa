"""Start Kamailio only once the RTP relay beside it answers (then exec it, same pid).

Why: Kamailio's rtpengine module pings the relay once in every worker at start; a worker
that started before rtpengine was listening marks it dead and fails its next command
(the ICMP port-unreachable of the ping stays pending on its socket). Both services start
together at `up` and at every boot of the registrar, so Kamailio waits for the relay's
`pong` (the ng protocol: a cookie, then a bencoded dictionary) before it starts.

Run: python -m testbed.sip.relay_wait HOST:PORT SECONDS -- kamailio ...
"""

from __future__ import annotations

import os
import socket
import sys
import time

PING = b"d7:command4:pinge"


def relay_answers(host: str, port: int, within: float) -> bool:
    deadline = time.monotonic() + within
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(0.1)
        attempt = 0
        while time.monotonic() < deadline:
            attempt += 1
            cookie = f"tb{os.getpid()}_{attempt}".encode()
            try:
                sock.sendto(cookie + b" " + PING, (host, port))
                reply = sock.recv(512)
            except OSError:  # nothing listening yet (port unreachable), or no reply
                time.sleep(0.05)
                continue
            if reply.startswith(cookie + b" ") and b"pong" in reply:
                return True
    return False


def main(argv: list[str]) -> int:
    if len(argv) < 4 or argv[2] != "--":
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    host, _, port = argv[0].rpartition(":")
    if not relay_answers(host, int(port), float(argv[1])):
        print(f"the RTP relay (rtpengine) did not answer on {argv[0]} within {argv[1]}s: "
              "see the node's rtpengine.log", file=sys.stderr)
        return 1
    os.execvp(argv[3], argv[3:])
    return 1  # not reached: exec replaced this process


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
