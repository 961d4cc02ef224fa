"""The media parts of kamailio.cfg: direct (`media_relay: never`) or through rtpengine.

With `nat`, a call where a party is behind a NAT (the caller's request, flag 5, or the
callee's registered contact, branch flag 6) has its SDP rewritten by rtpengine on the
same node (testbed/sip/rtpengine.py), so both phones send their media to the relay; the
Record-Route carries `relay=yes`, so the dialog's BYE ends the relay's session. If the
relay cannot be asked, the INVITE is refused (503 Media Relay Unavailable) and an answer
is dropped rather than passed on with the phones' own addresses: a call never looks
direct because the relay failed. With `never`, the SDP is only corrected to the NAT's
public address (media direct, which a symmetric NAT does not let through).
"""

from __future__ import annotations

from dataclasses import dataclass

from testbed.sip.rtpengine import NG_PORT

# rewrite the SDP's c= and o= lines to the relay; where the SDP names a private address,
# the relay sends to the address the SIP message came from instead (and, as always,
# learns the real source port from the first RTP packet)
RELAY_FLAGS = "replace-origin replace-session-connection"
NATED_FLAGS = f"SIP-source-address {RELAY_FLAGS}"


@dataclass(frozen=True)
class Media:
    modules: tuple[str, ...] = ()
    params: str = ""
    offer: str = ""  # request route, before the REGISTER branch
    in_dialog: str = ""  # inside `if (loose_route())`
    relay: str = ""  # the initial INVITE, after the callee's lookup
    answer: str = ""  # onreply_route
    routes: str = ""  # route blocks of its own


DIRECT = Media(
    offer='''    if (is_method("INVITE") && has_body("application/sdp") && isflagset(5)) {
        fix_nated_sdp("3");
    }
''',
    answer='''    if (has_body("application/sdp") && nat_uac_test("8")) {
        fix_nated_sdp("3");
    }
''')

RELAYED = Media(
    modules=("rtpengine",),
    # the relay starts beside Kamailio: if it was not up yet, ask it again within 2 s
    params=(f'modparam("rtpengine", "rtpengine_sock", "udp:127.0.0.1:{NG_PORT}")\n'
            'modparam("rtpengine", "rtpengine_disable_tout", 2)\n'
            'modparam("rtpengine", "rtpengine_tout_ms", 1000)\n'
            'modparam("rtpengine", "rtpengine_retr", 1)\n'),
    # flag 8: this dialog's media crosses the relay
    in_dialog='''            if (check_route_param("relay=yes")) {
                setflag(8);
                route(MEDIA);
            }
''',
    relay='''    if (is_method("INVITE") && has_body("application/sdp")
            && (isflagset(5) || isbflagset(6))) {
        setflag(8);
        add_rr_param(";relay=yes");
        route(MEDIA);
    }
''',
    answer='''    if (isflagset(8)) {
        route(MEDIA);
    } else if (has_body("application/sdp") && nat_uac_test("8")) {
        fix_nated_sdp("3");
    }
''',
    routes=f'''
# offer, answer or delete at the relay, as the message is
route[MEDIA] {{
    if (is_reply() && !is_method("INVITE")) {{
        return;
    }}
    if (is_method("BYE|CANCEL")) {{
        rtpengine_delete();
        return;
    }}
    if (!has_body("application/sdp")) {{
        return;
    }}
    if (nat_uac_test("8")) {{
        if (rtpengine_manage("{NATED_FLAGS}")) {{
            return;
        }}
    }} else if (rtpengine_manage("{RELAY_FLAGS}")) {{
        return;
    }}
    xlog("L_ERR", "the RTP relay did not answer for $ci: call not passed on unrelayed\\n");
    if (is_request() && is_method("INVITE")) {{
        sl_send_reply("503", "Media Relay Unavailable");
        exit;
    }}
    drop;
}}
''')


def media(settings_relay: str) -> Media:
    return RELAYED if settings_relay == "nat" else DIRECT
