"""The run's series for a SIP lab, under the overlay's names where they mean the same.

online_fraction is the registered fraction (what each UA itself reports), the "login"
series are REGISTERs at the registrar (Kamailio's own counters), so summary.json, the
report and `compare` put a SIP run beside an overlay run like for like. Series with no
SIP meaning (supernodes) are left out, and come out as null in summary.json.
"""

from __future__ import annotations

PER_USER = "sip_ua_registered"  # one series per UA, 1 while it is registered


def per_user(interval: float) -> str:
    """One series per UA; last_over_time bridges one missed scrape of the poller (one
    target for every UA: a miss would otherwise read as nobody registered). A UA that is
    down is a 0 the poller reports, not a gap, so real drops show at once."""
    return f"last_over_time({PER_USER}[{round(max(2.5 * interval, 2) * 1000)}ms])"


def sip_series_queries(users: int, interval: float) -> dict[str, str]:
    window = f"{max(4 * interval, 2):g}s"

    def rate(metric: str) -> str:
        return f"sum(rate({metric}[{window}])) or vector(0)"

    return {
        "online_fraction": f"(sum({per_user(interval)}) or vector(0)) / {users}",
        "login_attempts_per_s": rate("kamailio_core_rcv_requests_register"),
        "login_server_requests_per_s": rate("kamailio_core_rcv_requests_register"),
        "login_server_ok_per_s": rate("kamailio_sl_200_replies"),
        "register_503_per_s": rate("kamailio_sl_5xx_replies"),
        "register_401_per_s": rate("kamailio_sl_401_replies"),
        "register_retransmission_share":
            f"(sum(rate(kamailio_register_retransmissions[{window}])) or vector(0)) / "
            f"sum(rate(kamailio_core_rcv_requests_register[{window}]))",
        "registrar_contacts": "sum(kamailio_usrloc_location_contacts) or vector(0)",
        "registrar_cpu_share": "sum(rate(sip_registrar_cpu_seconds_total"
                               f"[{window}])) or vector(0)",
        "hosts_down": "count(testbed_node_up == 0) or vector(0)",
        "calls_failed": "sum(sip_ua_calls_failed_total) or vector(0)",
    }
