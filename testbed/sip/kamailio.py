"""Kamailio's configuration for a `registrar` node, rendered from the topology.

An in-memory registrar (usrloc db_mode 0) and stateful proxy with NAT traversal as SIP
providers ran it in 2007: rport/received (force_rport, fix_nated_register), contacts
rewritten to the address the packet came from, NAT keep-alives sent by the registrar
(nathelper OPTIONS pings every `NATPING_S`, shorter than the home NATs' UDP timeout).
Two variants: `plain`, and `overload-control`, where a ratelimit pipe answers every
request above `rate`/s with 503 and a Retry-After (RFC 5390's overload response, the
local form of RFC 7339's feedback). Statistics are served by xhttp_prom on the
management address, never parsed from logs; REGISTER retransmissions (same Call-ID and
CSeq within timer F) are counted in the config itself, as Kamailio has no such statistic
for requests it answers statelessly.

Digest authentication (`auth: digest`): a REGISTER without valid credentials is answered
401 with a challenge (auth's auth_challenge, counted in sl's own `401_replies`); each
phone's password is computed in the config from a per-lab key and the To user
(testbed/sip/auth.py), so no database or table is needed. A REGISTER whose credentials
verify is counted in the overload-control pipe but never refused by it: the 401 that
preceded it was counted already, and refusing the retry would double the work a
registration costs exactly when the registrar is short of capacity.

The media parts (direct, or through the rtpengine relay with `media_relay: nat`) are in
testbed/sip/kamailio_media.py.
"""

from __future__ import annotations

from testbed.sip.kamailio_media import media
from testbed.topology.model import RegistrarSettings

CONFIG_NAME = "kamailio.cfg"
NATPING_S = 15  # the home NATs forget UDP mappings after 30 s


def _modules(overload: bool, digest: bool, extra: tuple[str, ...]) -> str:
    names = ["kex", "corex", "tm", "tmx", "sl", "rr", "pv", "maxfwd", "textops",
             "siputils", "xlog", "sanity", "usrloc", "registrar", "nathelper", "xhttp",
             "xhttp_prom", "htable"]
    if overload:
        names.append("ratelimit")
    if digest:
        names.append("auth")
    names += extra
    return "\n".join(f'loadmodule "{name}.so"' for name in names)


def _verify(key: str) -> str:
    """Sets $var(authed) to 1 when a REGISTER carries credentials that verify."""
    return f'''    $var(authed) = 0;
    if (is_method("REGISTER") && is_present_hf("Authorization")) {{
        $var(who) = "{key}:" + $tU;
        $var(password) = $(var(who){{s.md5}});
        if (pv_auth_check("$td", "$var(password)", "0", "1")) {{
            $var(authed) = 1;
        }}
    }}
'''


def kamailio_config(settings: RegistrarSettings, address: str, mgmt: str,
                    key: str = "") -> str:
    """The whole kamailio.cfg; `address` is the SIP address, `mgmt` the metrics one,
    `key` the lab's key the phones' passwords derive from (auth: digest)."""
    overload = settings.variant == "overload-control"
    digest = settings.auth == "digest"
    if digest and not key:
        raise ValueError("auth: digest needs the lab's key")
    sdp = media(settings.media_relay)
    limit = (f'modparam("ratelimit", "timer_interval", 1)\n'
             f'modparam("ratelimit", "pipe", "1:TAILDROP:{max(1, round(settings.rate))}")\n'
             if overload else "")
    spare = " && $var(authed) == 0" if digest else ""
    shed = (f'''    if (!is_method("ACK") && !rl_check_pipe("1"){spare}) {{
        append_to_reply("Retry-After: {round(settings.retry_after)}\\r\\n");
        sl_send_reply("503", "Service Unavailable");
        exit;
    }}
''' if overload else "")
    expires = max(1, round(settings.expires))
    challenge = '''        if ($var(authed) == 0) {
            auth_challenge("$td", "1");
            exit;
        }
        consume_credentials();
'''
    return f'''#!KAMAILIO
# written by outage-testbed (testbed/sip/kamailio.py): variant {settings.variant},
# media relay {settings.media_relay}, auth {settings.auth}
debug=1
log_stderror=yes
children=2
tcp_children=1
auto_aliases=no
dns=no
rev_dns=no
listen=udp:{address}:{settings.port}
listen=tcp:{mgmt}:{settings.metrics_port}
tcp_accept_no_cl=yes
alias="{address}"

{_modules(overload, digest, sdp.modules)}

modparam("usrloc", "db_mode", 0)
modparam("usrloc", "nat_bflag", 6)
modparam("registrar", "max_expires", {expires})
modparam("registrar", "default_expires", {expires})
modparam("registrar", "received_avp", "$avp(RECEIVED)")
modparam("nathelper", "received_avp", "$avp(RECEIVED)")
modparam("nathelper", "natping_interval", {NATPING_S})
modparam("nathelper", "ping_nated_only", 1)
modparam("nathelper", "sipping_bflag", 7)
modparam("nathelper", "sipping_from", "sip:pinger@{address}")
modparam("tm", "fr_timer", 30000)
modparam("xhttp_prom", "xhttp_prom_stats", "all")
# a REGISTER whose Call-ID and CSeq were seen within timer F (32 s) is a retransmission
modparam("htable", "htable", "regs=>size=12;autoexpire=32;")
modparam("xhttp_prom", "prom_counter", "name=register_retransmissions;")
{limit}{sdp.params}
request_route {{
    if (!mf_process_maxfwd_header("10")) {{
        sl_send_reply("483", "Too Many Hops");
        exit;
    }}
    if (is_method("REGISTER")) {{
        if ($sht(regs=>$ci::$cs) != $null) {{
            prom_counter_inc("register_retransmissions", "1");
        }}
        $sht(regs=>$ci::$cs) = 1;
    }}
{_verify(key) if digest else ""}{shed}    force_rport();
    if (nat_uac_test("19")) {{
        if (is_method("REGISTER")) {{
            fix_nated_register();
        }} else {{
            fix_nated_contact();
        }}
        setflag(5);
    }}
{sdp.offer}    if (is_method("REGISTER")) {{
{challenge if digest else ""}        if (isflagset(5)) {{
            setbflag(6);
            setbflag(7);
        }}
        if (!save("location")) {{
            sl_reply_error();
        }}
        exit;
    }}
    if (has_totag()) {{
        if (loose_route()) {{
{sdp.in_dialog}            route(RELAY);
        }}
        if (is_method("ACK") && t_check_trans()) {{
            route(RELAY);
        }}
        if (!is_method("ACK")) {{
            sl_send_reply("404", "Not here");
        }}
        exit;
    }}
    if (is_method("CANCEL")) {{
        if (t_check_trans()) {{
            route(RELAY);
        }}
        exit;
    }}
    if (!is_method("ACK")) {{
        t_check_trans();
    }}
    if (is_method("OPTIONS") && uri == myself && $rU == $null) {{
        sl_send_reply("200", "Keepalive");
        exit;
    }}
    if (is_method("INVITE")) {{
        record_route();
    }}
    if (uri == myself) {{
        if (!lookup("location")) {{
            sl_send_reply("404", "Not Found");
            exit;
        }}
    }}
{sdp.relay}    route(RELAY);
}}

route[RELAY] {{
    t_on_reply("NATREPLY");
    if (!t_relay()) {{
        sl_reply_error();
    }}
    exit;
}}

onreply_route[NATREPLY] {{
    if (nat_uac_test("1")) {{
        fix_nated_contact();
    }}
{sdp.answer}}}
{sdp.routes}
event_route[xhttp:request] {{
    if ($hu =~ "^/metrics") {{
        prom_dispatch();
    }} else {{
        xhttp_reply("404", "Not Found", "text/plain", "/metrics only\\n");
    }}
}}
'''
