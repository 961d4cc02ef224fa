"""rtpengine (Debian's `rtpengine-daemon`) as the registrar node's RTP relay.

Kamailio's rtpengine module rewrites the SDP of a call with a party behind a NAT so
that both phones send their media to the relay, which forwards it between them: a phone
behind a symmetric NAT, whose media no other phone can reach directly, gets media. The
relay forwards in userspace only (`--table=-1`: no kernel module, no iptables chain, so
nothing outside the node's namespace changes), listens for RTP on the registrar's lab
address and for Kamailio's commands (the ng protocol) on the namespace's own loopback.
"""

from __future__ import annotations

NG_PORT = 2223  # ng control protocol, on 127.0.0.1 inside the registrar's namespace
PORT_MIN = 30000  # the RTP/RTCP ports the relay allocates (two per side of a call)
PORT_MAX = 30999


def rtpengine_argv(address: str) -> tuple[str, ...]:
    """The daemon in the foreground (the supervisor owns its pid), logging to stderr."""
    return ("rtpengine", "--config-file=none", "--foreground", "--log-stderr",
            "--no-log-timestamps", "--log-level=6", "--table=-1", f"--interface={address}",
            f"--listen-ng=127.0.0.1:{NG_PORT}", f"--port-min={PORT_MIN}",
            f"--port-max={PORT_MAX}", "--num-threads=1", "--media-num-threads=1",
            "--delete-delay=0", "--timeout=60")
