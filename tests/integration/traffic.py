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
