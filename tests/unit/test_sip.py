"""The SIP control experiment's pure parts: Kamailio's and baresip's configs, the kinds'
rules, the outcome series, scrape targets, and the UA poller and call placement against
a stand-in for baresip's control interface (a netstring JSON server on loopback).
(Real Kamailio and baresip in a real lab: tests/integration/test_sip_lab.py.)"""

from __future__ import annotations

import asyncio
import itertools
import json
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from testbed.errors import TopologyError
from testbed.metrics.outcome import series_queries
from testbed.nodes.registry import default_registry
from testbed.plan.build import build_plan
from testbed.scenario.actions import ActionError, schedule
from testbed.scenario.model import Selector, StepSpec
from testbed.sip import monitor
from testbed.sip.baresip import account_line, baresip_config
from testbed.sip.calls import media_path, place_call
from testbed.sip.ctrl import frame, is_registered
from testbed.sip.kamailio import kamailio_config
from testbed.sip.poller import State, poll_once
from testbed.topology.loader import load_topology_text
from testbed.topology.model import RegistrarSettings

TOPOLOGY = """
name: sipunit
nodes:
  internet: {kind: router}
  registrar: {kind: registrar, uplink: {to: internet}, registrar: {variant: plain}}
  nat{n}: {count: 2, kind: nat, uplink: {to: internet}}
  pc{n}: {count: 2, kind: sip_ua, group: pcs, uplink: {to: "nat{n}"}}
  peer: {kind: peer, uplink: {to: internet}}
groups:
  pcs: {}
"""
REGINFO_OK = ("\n--- User Agents (1) ---\n> sip:pc1@198.18.0.2:5060   \x1b[32mOK \x1b[;m "
              "kamailio Expires 300s\n\n")
REGINFO_FAILED = "\n--- User Agents (1) ---\n> sip:pc1@198.18.0.2:5060   \x1b[31mERR\x1b[;m\n"


def test_overload_control_sheds_with_503_and_retry_after_plain_does_not() -> None:
    plain = kamailio_config(RegistrarSettings(), "198.18.0.2", "100.127.0.3", "k")
    shed = kamailio_config(RegistrarSettings(variant="overload-control", rate=7,
                                             retry_after=12), "198.18.0.2", "100.127.0.3",
                           "k")
    assert "ratelimit" not in plain and "Retry-After" not in plain
    assert 'modparam("ratelimit", "pipe", "1:TAILDROP:7")' in shed
    assert 'append_to_reply("Retry-After: 12\\r\\n");' in shed
    assert 'sl_send_reply("503", "Service Unavailable");' in shed
    for text in (plain, shed):  # SIP on the emulated network, metrics on management only
        assert "listen=udp:198.18.0.2:5060" in text
        assert "listen=tcp:100.127.0.3:9100" in text
        assert 'modparam("usrloc", "db_mode", 0)' in text  # in memory: a reboot forgets
        assert 'prom_counter_inc("register_retransmissions", "1");' in text


def test_calls_with_a_party_behind_a_nat_go_through_the_relay_unless_never() -> None:
    relayed = kamailio_config(RegistrarSettings(auth="none"), "198.18.0.2", "100.127.0.3")
    direct = kamailio_config(RegistrarSettings(media_relay="never", auth="none"), "198.18.0.2",
                             "100.127.0.3")
    assert 'loadmodule "rtpengine.so"' in relayed
    assert 'modparam("rtpengine", "rtpengine_sock", "udp:127.0.0.1:2223")' in relayed
    # the caller's request (flag 5) or the callee's registered contact (branch flag 6)
    assert "(isflagset(5) || isbflagset(6))" in relayed and "rtpengine_manage(" in relayed
    assert 'sl_send_reply("503", "Media Relay Unavailable");' in relayed  # never unrelayed
    assert "fix_nated_sdp" in relayed  # calls the relay is not needed for are corrected
    assert "rtpengine" not in direct and 'fix_nated_sdp("3");' in direct


def test_a_bad_media_relay_is_reported_at_its_line() -> None:
    text = TOPOLOGY.replace("registrar: {variant: plain}", "registrar: {media_relay: always}")
    with pytest.raises(TopologyError) as info:
        load_topology_text(text, "t.yaml")
    messages = [str(p) for p in info.value.problems]
    assert messages == ["t.yaml:5: nodes.registrar.registrar.media_relay: 'always' is not "
                        "allowed; choose one of: nat, never"], messages


@pytest.mark.parametrize(("sends_to", "receives_from", "relay", "said"), [
    ("198.18.0.2", "198.18.0.2", "198.18.0.2", "media via the relay 198.18.0.2"),
    ("198.18.1.9", "198.18.1.9", "198.18.0.2", "media direct with 198.18.1.9"),
    ("198.18.1.9", "198.18.1.9", None, "media direct with 198.18.1.9"),
    ("198.18.1.9", "198.18.0.2", "198.18.0.2", "media half relayed (sent to 198.18.1.9, "
                                               "received from 198.18.0.2)"),
    (None, "198.18.0.2", "198.18.0.2", "media path unknown"),
])
def test_the_media_path_is_the_callers_own_account(sends_to: str | None,
                                                   receives_from: str | None,
                                                   relay: str | None, said: str) -> None:
    assert media_path(sends_to, receives_from, relay).startswith(said)


def test_digest_challenges_registers_and_spares_the_credentialed_retry() -> None:
    shed = kamailio_config(RegistrarSettings(variant="overload-control"), "198.18.0.2",
                           "100.127.0.3", "lab-key")
    assert 'loadmodule "auth.so"' in shed and 'auth_challenge("$td", "1");' in shed
    # each phone's password: md5 of the lab's key and the To user, as testbed/sip/auth.py
    assert '$var(who) = "lab-key:" + $tU;' in shed and "{s.md5}" in shed
    # credentials that verify are counted in the pipe, never refused by it
    assert '!rl_check_pipe("1") && $var(authed) == 0' in shed
    assert shed.index("rl_check_pipe") < shed.index("auth_challenge")  # shed before 401
    open_ = kamailio_config(RegistrarSettings(auth="none"), "198.18.0.2", "100.127.0.3")
    assert "auth" not in open_.replace("auth none", "")
    with pytest.raises(ValueError, match="needs the lab's key"):
        kamailio_config(RegistrarSettings(), "198.18.0.2", "100.127.0.3")


def test_each_phone_gets_its_own_password_for_its_registrar() -> None:
    from testbed.sip.auth import lab_key, password

    plan = build_plan(load_topology_text(TOPOLOGY))
    registry = default_registry()
    key = lab_key("sipunit", "registrar")
    registrar = registry.get("registrar").setup(plan.nodes["registrar"], plan)
    assert f'$var(who) = "{key}:" + $tU;' in registrar.files["kamailio.cfg"]
    accounts = [registry.get("sip_ua").setup(plan.nodes[n], plan).files["accounts"]
                for n in ("pc1", "pc2")]
    assert f";auth_pass={password(key, 'pc1')};" in accounts[0]
    assert f";auth_pass={password(key, 'pc2')};" in accounts[1]
    assert password(key, "pc1") != password(key, "pc2") != password(lab_key("other",
                                                                             "registrar"), "pc2")
    open_ = build_plan(load_topology_text(TOPOLOGY.replace("variant: plain", "auth: none")))
    assert "auth_pass" not in registry.get("sip_ua").setup(open_.nodes["pc1"],
                                                            open_).files["accounts"]


@pytest.mark.skipif(shutil.which("kamailio") is None, reason="kamailio is not installed")
@pytest.mark.parametrize(("variant", "relay", "auth"), [
    ("plain", "nat", "digest"), ("overload-control", "nat", "digest"),
    ("plain", "never", "none"), ("overload-control", "never", "none")])
def test_kamailio_itself_accepts_both_variants(tmp_path: Path, variant: str, relay: str,
                                               auth: str) -> None:
    config = tmp_path / "kamailio.cfg"
    config.write_text(kamailio_config(
        RegistrarSettings(variant=variant, media_relay=relay,  # type: ignore[arg-type]
                          auth=auth),  # type: ignore[arg-type]
        "127.0.0.1", "127.0.0.1", "k"))
    result = subprocess.run(["kamailio", "-c", "-f", str(config)], capture_output=True,
                            text=True, timeout=30)
    assert result.returncode == 0, result.stderr[-2000:]


def test_baresip_listens_for_sip_on_the_lab_and_for_control_on_management_only() -> None:
    config = baresip_config("192.168.1.2", "100.127.0.8")
    assert "sip_listen 192.168.1.2:5060" in config
    assert "ctrl_tcp_listen 100.127.0.8:4444" in config
    assert "module_app ctrl_tcp.so" in config and "stdio" not in config  # headless
    assert account_line("pc1", "198.18.0.2:5060", 120).startswith(
        "<sip:pc1@198.18.0.2:5060>;regint=120;answermode=auto")


def test_a_sip_ua_without_a_registrar_is_reported_at_its_line() -> None:
    text = TOPOLOGY.replace("  registrar: {kind: registrar, uplink: {to: internet}, "
                            "registrar: {variant: plain}}\n", "")
    with pytest.raises(TopologyError) as info:
        load_topology_text(text, "t.yaml")
    messages = [str(p) for p in info.value.problems]
    assert any(m.startswith("t.yaml:6: nodes.pc1.sip_ua: a sip_ua needs a registrar node")
               for m in messages), messages
    wrong = TOPOLOGY.replace("group: pcs,", "group: pcs, sip_ua: {registrar: nat1},")
    with pytest.raises(TopologyError, match="'nat1' is not a registrar node; registrar "
                                            "nodes: registrar"):
        load_topology_text(wrong, "t.yaml")


def test_registrar_settings_apply_to_registrars_only() -> None:
    text = TOPOLOGY.replace("peer: {kind: peer,", "peer: {kind: peer, registrar: {},")
    with pytest.raises(TopologyError, match="registrar: does not apply to kind peer; it "
                                            "applies to: registrar"):
        load_topology_text(text, "t.yaml")


def test_kinds_render_real_daemons_that_up_waits_for() -> None:
    plan = build_plan(load_topology_text(TOPOLOGY))
    registry = default_registry()
    registrar = registry.get("registrar").setup(plan.nodes["registrar"], plan)
    ua = registry.get("sip_ua").setup(plan.nodes["pc1"], plan)
    # the relay first, so that Kamailio finds it at start; both waited for by `up`
    assert [s.name for s in registrar.services] == ["rtpengine", "kamailio"]
    assert all(s.settle > 0 for s in registrar.services)
    relay = registrar.services[0].argv
    assert relay[0] == "rtpengine" and "--table=-1" in relay  # userspace, no iptables
    assert "--listen-ng=127.0.0.1:2223" in relay and "--config-file=none" in relay
    # Kamailio starts once the relay answers its ping, then is Kamailio itself (exec)
    assert registrar.services[1].argv[2:6] == ("testbed.sip.relay_wait", "127.0.0.1:2223",
                                               "60", "--")
    assert registrar.services[1].argv[6] == "kamailio"
    assert ua.services[0].argv == ("baresip", "-f", "{state_dir}") and ua.services[0].settle
    address = plan.nodes["registrar"].primary_address()
    assert ua.files["accounts"].startswith(f"<sip:pc1@{address}:5060>")
    assert f"listen=udp:{address}:5060" in registrar.files["kamailio.cfg"]
    assert f"--interface={address}" in relay
    assert monitor.relay_of(plan, "pc1") == address
    direct = build_plan(load_topology_text(TOPOLOGY.replace("variant: plain",
                                                            "media_relay: never")))
    alone = registry.get("registrar").setup(direct.nodes["registrar"], direct)
    assert [s.name for s in alone.services] == ["kamailio"]
    assert alone.services[0].argv[0] == "kamailio"
    assert monitor.relay_of(direct, "pc1") is None


def test_prometheus_scrapes_kamailio_and_the_poller_in_sip_labs_only() -> None:
    plan = build_plan(load_topology_text(TOPOLOGY))
    jobs = {job["job_name"]: job for job in monitor.scrape_configs(plan)}
    assert set(jobs) == {"kamailio", "sip_uas"}
    mgmt = (plan.nodes["registrar"].mgmt_address or "").split("/")[0]
    assert jobs["kamailio"]["static_configs"][0]["targets"] == [f"{mgmt}:9100"]
    assert monitor.user_agents(plan) == ["pc1", "pc2"]
    assert monitor.workload_of(plan) == "sip"
    plain = load_topology_text("name: p\nnodes:\n  a: {kind: router}\n"
                               "  b: {kind: peer, uplink: {to: a}}\n")
    assert monitor.scrape_configs(build_plan(plain)) == []


def test_sip_series_share_the_overlay_names_where_they_mean_the_same() -> None:
    overlay, sip = series_queries(160, 1.0), series_queries(168, 1.0, "sip")
    # whole units: Prometheus refuses 2.5s
    assert sip["online_fraction"] == ("(sum(last_over_time(sip_ua_registered[2500ms])) or "
                                      "vector(0)) / 168")
    assert "kamailio_core_rcv_requests_register" in sip["login_server_requests_per_s"]
    assert "kamailio_sl_200_replies" in sip["login_server_ok_per_s"]
    assert {"online_fraction", "login_attempts_per_s", "login_server_requests_per_s",
            "login_server_ok_per_s", "hosts_down", "calls_failed"} <= set(overlay) & set(sip)
    assert "supernodes" not in sip  # no meaning for SIP: null in summary.json


def test_calls_are_between_sip_uas_or_between_overlay_peers_never_mixed() -> None:
    topology = load_topology_text(TOPOLOGY)
    step = StepSpec(action="call", at=1.0, select=Selector(names=["pc1"]),
                    to=Selector(names=["pc2"]), duration=3.0)
    [event] = schedule([step], topology, 1)
    assert event.nodes == ("pc1",) and event.params == {"to": "pc2", "seconds": 3.0,
                                                        "sip": True}
    mixed = StepSpec(action="call", at=1.0, select=Selector(names=["pc1"]),
                     to=Selector(names=["peer"]), duration=3.0)
    with pytest.raises(ActionError, match="pc1 is not a reference overlay peer"):
        schedule([mixed], topology, 1)


# --- the poller and calls, against a stand-in for baresip's ctrl_tcp ----------------

Handler = Callable[[dict[str, Any], asyncio.StreamWriter], Any]


async def _serve(handler: Handler) -> tuple[asyncio.AbstractServer, int]:
    async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        from testbed.sip.ctrl import read_frame
        try:
            while True:
                await handler(await read_frame(reader), writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()

    server = await asyncio.start_server(client, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


def _send(writer: asyncio.StreamWriter, message: dict[str, Any]) -> None:
    body = json.dumps(message).encode()
    writer.write(str(len(body)).encode() + b":" + body + b",")


def test_poller_reads_each_uas_own_registration_and_counts_silence_as_offline() -> None:
    async def scenario() -> State:
        async def answer(message: dict[str, Any], writer: asyncio.StreamWriter) -> None:
            assert message["command"] == "reginfo"
            _send(writer, {"event": True, "type": "REGISTER_OK"})  # events come first
            _send(writer, {"response": True, "ok": True, "data": REGINFO_OK})

        async def failed(message: dict[str, Any], writer: asyncio.StreamWriter) -> None:
            _send(writer, {"response": True, "ok": True, "data": REGINFO_FAILED})

        good, good_port = await _serve(answer)
        bad, bad_port = await _serve(failed)
        state = State([{"node": "a", "host": "127.0.0.1", "port": good_port, "group": "g"},
                       {"node": "b", "host": "127.0.0.1", "port": bad_port},
                       {"node": "c", "host": "127.0.0.1", "port": 1}])  # nobody there
        await poll_once(state, timeout=1.0)
        good.close()
        bad.close()
        return state

    state = asyncio.run(scenario())
    assert state.registered == {"a": 1, "b": 0, "c": 0}
    assert state.up == {"a": 1, "b": 1, "c": 0}
    text = state.render()
    assert 'sip_ua_registered{node="a",kind="sip_ua",group="g"} 1' in text
    assert 'sip_ua_info{node="c",kind="sip_ua"} 1' in text
    # each family's samples together, as Prometheus's text format wants
    names = [line.split("{")[0].split()[0] for line in text.splitlines()
             if not line.startswith("#")]
    runs = [name for name, _ in itertools.groupby(names)]
    assert len(runs) == len(set(runs)) == 6, runs


AUDIO_DEBUG = (" audio dir=sendrecv pt_enc=96\n local: 0.0.0.0:23906, remote: "
               "198.18.0.2:30012/198.18.0.2:30013\n mnat: (none) (connected=no)\n"
               "  member 0x5b7fc034: lost=0 Jitter=0.0ms RTT=0.0ms\n"
               "                 IP=198.18.0.2:30012 psent=0 rcvd=14\n")


@pytest.mark.parametrize(("events", "ok", "reason"), [
    (["CALL_RINGING", "CALL_ESTABLISHED", "CALL_RTPESTAB"], True, None),
    (["CALL_RINGING", "CALL_ESTABLISHED"], False, "answered, but no media arrived"),
    (["CALL_CLOSED"], False, "closed: 404 Not Found"),
])
def test_a_call_succeeds_only_when_media_flows(events: list[str], ok: bool,
                                               reason: str | None) -> None:
    seen: list[str] = []

    async def scenario() -> dict[str, Any]:
        async def phone(message: dict[str, Any], writer: asyncio.StreamWriter) -> None:
            seen.append(f"{message['command']} {message['params']}".strip())
            if message["command"] == "dial":
                _send(writer, {"response": True, "ok": True, "data": ""})
                for kind in events:
                    _send(writer, {"event": True, "type": kind, "param": "404 Not Found"})
            if message["command"] == "audio_debug":
                _send(writer, {"event": True, "type": "CALL_RTCP"})  # events come first
                _send(writer, {"response": True, "ok": True, "data": AUDIO_DEBUG})

        server, port = await _serve(phone)
        outcome = await place_call("127.0.0.1", port, "sip:b@198.18.0.2:5060", 0.1, 0.5)
        await asyncio.sleep(0.1)
        server.close()
        return outcome

    outcome = asyncio.run(scenario())
    assert outcome["ok"] is ok
    if reason:
        assert outcome["reason"].startswith(reason)
    else:  # where the caller sends its RTP and where the RTP it got came from
        assert (outcome["sends_to"], outcome["receives_from"]) == ("198.18.0.2",) * 2
    asked = ["audio_debug"] if ok else []
    assert seen == ["dial sip:b@198.18.0.2:5060", *asked, "hangup"]  # always hung up


def test_frames_and_registration_parsing() -> None:
    length, _, rest = frame("reginfo", token="x").partition(b":")
    assert rest.endswith(b",") and int(length) == len(rest) - 1  # a netstring
    assert json.loads(rest[:-1]) == {"command": "reginfo", "params": "", "token": "x"}
    assert is_registered({"ok": True, "data": REGINFO_OK})
    assert not is_registered({"ok": True, "data": REGINFO_FAILED})
    assert not is_registered({"ok": False, "data": REGINFO_OK})


def test_registrar_cpu_is_the_cpu_of_its_namespaces_processes() -> None:
    import os

    from testbed.sip.cpu import NamespaceCpu, cpu_seconds, namespace_pids, netns_inode

    path = f"/proc/{os.getpid()}/ns/net"
    mine = netns_inode(path)
    assert mine is not None and os.getpid() in namespace_pids(mine)
    before = cpu_seconds({os.getpid()})
    sum(i * i for i in range(1_000_000))  # burn a little CPU
    after = cpu_seconds({os.getpid()})
    assert before is not None and after is not None and after > before
    assert cpu_seconds({2**22 + 1}) is None  # a process gone: the caller scans again
    assert NamespaceCpu("/run/netns/no-such-namespace").read() is None


def test_run_json_names_the_registrar_variant_not_the_overlays_defaults() -> None:
    plan = build_plan(load_topology_text(TOPOLOGY))
    assert monitor.run_info(plan) == {"workload": "sip", "policy": "sip plain",
                                      "time_scale": 1.0, "login_capacity": None,
                                      "supernode_overload": None}
    shedding = TOPOLOGY.replace("variant: plain", "variant: overload-control, rate: 30")
    info = monitor.run_info(build_plan(load_topology_text(shedding)))
    assert info["policy"] == "sip overload-control" and info["login_capacity"] == 30


@pytest.mark.skipif(shutil.which("rtpengine") is None, reason="rtpengine is not installed")
def test_kamailio_waits_for_a_real_rtpengine_then_becomes_the_command() -> None:
    from testbed.sip.relay_wait import main, relay_answers
    from testbed.sip.rtpengine import rtpengine_argv

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    assert not relay_answers("127.0.0.1", port, 0.3)  # nobody there: it gives up
    argv = [a if not a.startswith("--listen-ng=") else f"--listen-ng=127.0.0.1:{port}"
            for a in rtpengine_argv("127.0.0.1")]
    relay = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert relay_answers("127.0.0.1", port, 10)
        waited = subprocess.run([sys.executable, "-m", "testbed.sip.relay_wait",
                                 f"127.0.0.1:{port}", "5", "--", "echo", "kamailio here"],
                                capture_output=True, text=True, timeout=30)
        assert waited.stdout == "kamailio here\n" and waited.returncode == 0
    finally:
        relay.terminate()
        relay.wait(10)
    assert main(["127.0.0.1:" + str(port), "0.2", "--", "true"]) == 1
