"""baresip's configuration for a `sip_ua` node: a real, headless softphone.

Why baresip (not SIPp): it is a complete user agent with its own registration client
(libre's sipreg: REGISTER at start, refresh before expiry, and after a failure the
RFC 5626 section 4.5 backoff, 30 s doubling up to 1800 s with jitter) and RFC 3261
transactions over UDP (T1 500 ms doubling to T2 4 s, timer F 32 s). It behaves as a
user's phone does after a reboot, which is what the comparison needs. SIPp is a load
generator: it sends whatever its scenario file says, so its "retry behaviour" would be
ours, not a real client's.

Headless: no stdio console, audio from a sine generator, the control interface
(ctrl_tcp, JSON in netstrings) on the management address only, so the run's poller
(testbed/sip/poller.py) reads registration state and places calls over the management
network, never through the emulated one.
"""

from __future__ import annotations

CONFIG_DIR = "baresip"
CTRL_PORT = 4444
MODULES = ("opus.so", "ausine.so", "aufile.so")
APP_MODULES = ("account.so", "menu.so", "ctrl_tcp.so")


def baresip_config(address: str, mgmt: str, port: int = 5060) -> str:
    lines = [
        "# written by outage-testbed (testbed/sip/baresip.py)",
        "poll_method epoll",
        f"sip_listen {address}:{port}",
        "sip_trans_def udp",
        "call_local_timeout 120",
        "call_max_calls 4",
        "audio_source ausine,440",  # 48 kHz only: hence opus, not G.711
        "audio_player aufile,/dev/null",
        "audio_alert aufile,/dev/null",
        "rtp_stats yes",
        "opus_bitrate 24000",  # fits a 512 kbit/s ADSL uplink
        "module_path /usr/lib/baresip/modules",
        *(f"module {m}" for m in MODULES),
        *(f"module_app {m}" for m in APP_MODULES),
        f"ctrl_tcp_listen {mgmt}:{CTRL_PORT}",
        "",
    ]
    return "\n".join(lines)


def account_line(user: str, registrar: str, regint: float, password: str | None = None
                 ) -> str:
    """One account: registers `user` at the registrar's address (answering its digest
    challenge with `password`, the auth user being `user`), answers calls itself."""
    auth = f";auth_pass={password}" if password else ""
    return (f"<sip:{user}@{registrar}>{auth};regint={max(1, round(regint))};"
            "answermode=auto;audio_codecs=opus\n")
