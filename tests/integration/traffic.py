"""Traffic helpers run inside lab nodes by the integration tests."""

from __future__ import annotations

UDP_PORT = 9999

# Counts UDP datagrams on UDP_PORT until a line arrives on stdin; prints the count and
# the source addresses.
UDP_SINK = f"""
import select, socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
s.bind(("0.0.0.0", {UDP_PORT}))
print("ready", flush=True)
count, senders, stop = 0, set(), False
while True:
    readable, _, _ = select.select([s, sys.stdin], [], [], 0 if stop else None)
    if s in readable:
        _, (host, _) = s.recvfrom(2048)
        count += 1
        senders.add(host)
    elif stop:
        break
    if sys.stdin in readable:
        sys.stdin.readline()
        stop = True  # take what is queued, then stop
print(count, " ".join(sorted(senders)), flush=True)
"""


def udp_burst(lab, sender: str, receiver: str, packets: int,  # noqa: ANN001
              size: int = 100) -> tuple[int, list[str], int]:
    """Send `packets` datagrams from sender to receiver's UDP_PORT, a few at a time.

    Returns (datagrams received, their source addresses, sendto() calls that failed)."""
    import subprocess
    import sys
    import time

    sink = lab.popen(receiver, sys.executable, "-c", UDP_SINK, stdin=subprocess.PIPE,
                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert sink.stdout is not None
        assert sink.stdout.readline().strip() == "ready"
        send = lab.python(sender, f"""
            import socket, time
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            errors = 0
            for i in range({packets}):
                try:
                    s.sendto(b"x" * {size}, ("{lab.addr(receiver)}", {UDP_PORT}))
                except OSError:
                    errors += 1
                if i % 10 == 9:
                    time.sleep(0.002)
            print(errors)
        """)
        assert send.returncode == 0, send.stderr
        time.sleep(0.5)  # the last datagrams are on their way
        out, err = sink.communicate("stop\n", timeout=15)
        assert sink.returncode == 0, err
    finally:
        if sink.poll() is None:
            sink.kill()
            sink.wait(5)
    count, _, senders = out.strip().partition(" ")
    return int(count), senders.split(), int(send.stdout.strip() or 0)
