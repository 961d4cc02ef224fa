"""The P2P CDN's pure parts: catalogue, torrents, request process, provisioning, bad
input (reported before anything is built), scrape targets and outcome metrics."""

from __future__ import annotations

import hashlib
import shutil
import socket
import subprocess
import textwrap
import time
from pathlib import Path

import pytest
import yaml

from testbed.errors import TopologyError
from testbed.metrics.cdn_outcome import cdn_queries, phases, summarize_cdn
from testbed.metrics.offline import free_port
from testbed.metrics.outcome import Trigger
from testbed.metrics.prometheus import config_text
from testbed.p2p.catalogue import (
    bencode,
    episode_bytes,
    info_hashes,
    popularity,
    preloaded,
    requests_of,
    torrent,
)
from testbed.p2p.origin import lighttpd_config
from testbed.p2p.origin_exporter import parse_status
from testbed.p2p.provision import peer_config
from testbed.plan.build import build_plan
from testbed.topology.cdn import BitTorrentSettings, OriginSettings
from testbed.topology.loader import load_topology

REPO = Path(__file__).resolve().parents[2]
SMALL = {"homes": "3", "seeds": "1"}

MINI = """\
name: cdnmini
nodes:
  internet: {kind: router}
  origin:
    kind: origin
    uplink: {to: internet, up: 2Mbit}
    origin: {episodes: 3, size: 1MB}
  tracker: {kind: tracker, uplink: {to: internet}}
  nat: {kind: nat, uplink: {to: internet, up: 512kbit, down: 8Mbit}}
  pc:
    kind: bt_peer
    uplink: {to: nat}
    bittorrent: {client: libtorrent, requests: 2, upload_rate: 256kbit}
"""


def load(tmp_path: Path, text: str):  # noqa: ANN201
    path = tmp_path / "topo.yaml"
    path.write_text(textwrap.dedent(text))
    return path, load_topology(path)


def problems(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "topo.yaml"
    path.write_text(textwrap.dedent(text))
    with pytest.raises(TopologyError) as info:
        build_plan(load_topology(path))
    return [str(p) for p in info.value.problems]


def test_bencode_follows_bep3() -> None:
    assert bencode({"b": 1, "a": [b"xy", "z"]}) == b"d1:al2:xy1:ze1:bi1ee"
    with pytest.raises(TypeError):
        bencode(True)


def test_a_torrent_has_the_origin_as_web_seed_and_libtorrent_accepts_it() -> None:
    lt = pytest.importorskip("libtorrent")
    content = episode_bytes(7, 1, 600_000)
    data, info_hash = torrent(content, "ep01.bin", 256 * 1024, "http://t/announce",
                              "http://o/ep/ep01.bin")
    info = lt.torrent_info(lt.bdecode(data))
    assert str(info.info_hashes().v1) == info_hash
    assert info.num_pieces() == 3 and info.total_size() == 600_000
    assert [w["url"] for w in info.web_seeds()] == ["http://o/ep/ep01.bin"]
    assert info.hash_for_piece(0) == hashlib.sha1(content[:256 * 1024]).digest()


def test_content_and_hashes_depend_only_on_the_seed() -> None:
    origin = OriginSettings(episodes=2, size=100_000, seed=3)
    assert info_hashes(origin) == info_hashes(OriginSettings(episodes=2, size=100_000, seed=3))
    assert info_hashes(origin) != info_hashes(OriginSettings(episodes=2, size=100_000, seed=4))
    assert len(set(info_hashes(origin))) == 2


def test_popularity_is_zipf_like_and_requests_follow_it() -> None:
    origin = OriginSettings(episodes=4, zipf=1.0)
    weights = popularity(origin)
    assert weights == sorted(weights, reverse=True) and abs(sum(weights) - 1) < 1e-9
    assert weights[0] / weights[1] == pytest.approx(2)
    bt = BitTorrentSettings(requests=2, window=100, peak_at=0.7, peak_width=0.1)
    firsts = [requests_of(i, bt, origin) for i in range(1, 301)]
    assert requests_of(5, bt, origin) == firsts[4]  # the same evening every time
    for reqs in firsts:
        assert len({r.episode for r in reqs}) == 2
        assert all(0 <= r.at <= 100 for r in reqs) and reqs == sorted(reqs, key=lambda r: r.at)
    asked = [r.episode for reqs in firsts for r in reqs]
    assert asked.count(1) > asked.count(4) * 2
    times = sorted(r.at for reqs in firsts for r in reqs)
    assert 60 <= times[len(times) // 2] <= 80  # the evening peak


def test_preload_picks_a_share_of_the_pcs() -> None:
    pcs = [f"pc{i}" for i in range(10)]
    assert len(preloaded(pcs, 0.3, 1)) == 3
    assert preloaded(pcs, 0.3, 1) == preloaded(list(reversed(pcs)), 0.3, 1)
    assert preloaded(pcs, 0.0, 1) == set()


def test_the_default_topology_is_valid_and_provisioned(tmp_path: Path) -> None:
    topology = load_topology(REPO / "topologies" / "p2p-cdn.yaml", SMALL)
    plan = build_plan(topology)
    config = peer_config(plan.nodes["home001"], plan)
    origin = plan.nodes["origin"].primary_address()
    tracker = plan.nodes["tracker"].primary_address()
    assert config["origin"] == f"http://{origin}"
    assert config["announce"] == f"udp://{tracker}:6969/announce"
    assert config["address"] == plan.nodes["home001"].primary_address()
    assert config["fallback_below"] == 400_000 and config["requests"]
    assert sum(peer_config(plan.nodes[n], plan)["preload"]
               for n in ("home001", "home002", "home003", "seed01")) == 1


def test_prometheus_scrapes_the_origin_and_every_pc(tmp_path: Path) -> None:
    plan = build_plan(load_topology(REPO / "topologies" / "p2p-cdn.yaml", SMALL))
    config = yaml.safe_load(config_text(plan, 9100, "100.127.0.1:9101", 1.0))
    cdn = next(job for job in config["scrape_configs"] if job["job_name"] == "cdn")
    nodes = {t["labels"]["node"]: t for t in cdn["static_configs"]}
    assert sorted(nodes) == ["home001", "home002", "home003", "origin", "seed01"]
    assert nodes["origin"]["targets"] == [
        plan.nodes["origin"].mgmt_address.split("/")[0] + ":9100"]
    assert nodes["seed01"]["labels"]["kind"] == "bt_peer"


def test_the_tracker_whitelists_exactly_the_catalogue(tmp_path: Path) -> None:
    from testbed.nodes.tracker import WHITELIST, TrackerKind

    _, topology = load(tmp_path, MINI)
    plan = build_plan(topology)
    setup = TrackerKind().setup(plan.nodes["tracker"], plan)
    assert setup.files[WHITELIST].split() == info_hashes(OriginSettings(episodes=3,
                                                                        size=1024 * 1024))
    argv = setup.services[0].argv
    assert argv[0] == "opentracker" and argv[argv.index("-w") + 1] == WHITELIST


def test_lighttpd_config_serves_the_catalogue_and_status_from_loopback() -> None:
    text = lighttpd_config(Path("/s/origin"), 80)
    assert 'server.document-root = "/s/origin/www"' in text
    assert '"mod_status"' in text and '$HTTP["remoteip"] == "127.0.0.1"' in text


@pytest.mark.skipif(shutil.which("lighttpd") is None, reason="lighttpd is not installed")
def test_lighttpd_writes_its_errors_to_the_service_log_not_a_file_of_its_own(
        tmp_path: Path) -> None:
    """The service's stdout/stderr is the log the lab's guard rotates; an error log file
    of lighttpd's own would grow without bound."""
    (tmp_path / "www").mkdir()
    port = free_port()
    conf = tmp_path / "lighttpd.conf"
    conf.write_text(lighttpd_config(tmp_path, port) + 'server.bind = "127.0.0.1"\n')
    proc = subprocess.Popen([shutil.which("lighttpd") or "lighttpd", "-D", "-f", str(conf)],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
    finally:
        proc.terminate()
        output, _ = proc.communicate(timeout=10)
    assert "server started" in output, output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lighttpd.conf", "www"]


def test_lighttpd_status_page_is_parsed() -> None:
    status = parse_status("Total Accesses: 12\nTotal kBytes: 4096\nUptime: 9\n"
                          "BusyServers: 3\nScoreboard: ___\n")
    assert status["Total kBytes"] == 4096 and status["BusyServers"] == 3
    assert "Scoreboard" not in status


# --- bad input: before anything is built -------------------------------------------------

def test_an_unknown_client_is_refused_with_the_choice(tmp_path: Path) -> None:
    found = problems(tmp_path, MINI.replace("client: libtorrent", "client: transmission"))
    assert len(found) == 1
    assert "topo.yaml:13: nodes.pc.bittorrent.client: 'transmission' is not allowed; " \
           "choose one of: libtorrent" in found[0]


def test_a_catalogue_too_big_for_the_pcs_disk_is_refused(tmp_path: Path) -> None:
    found = problems(tmp_path, MINI.replace("upload_rate: 256kbit",
                                            "upload_rate: 256kbit, disk: 1MB"))
    assert len(found) == 1
    assert "nodes.pc.bittorrent.disk: this PC may have to hold 2,097,152 B" in found[0]
    assert "more than its disk: 1,048,576 B" in found[0]


def test_a_catalogue_too_big_for_the_origins_disk_is_refused(tmp_path: Path) -> None:
    found = problems(tmp_path, MINI.replace("size: 1MB}", "size: 1MB, disk: 2MB}"))
    assert len(found) == 1
    assert "nodes.origin.origin.disk: the catalogue (3 episodes" in found[0]


def test_an_upload_rate_the_line_cannot_carry_is_refused(tmp_path: Path) -> None:
    found = problems(tmp_path, MINI.replace("upload_rate: 256kbit", "upload_rate: 2Mbit"))
    assert len(found) == 1
    assert ("nodes.pc.bittorrent.upload_rate: 2mbit is more than the links can carry: "
            "the narrowest upload on the way out of pc is 512kbit") in found[0]


def test_a_fallback_rate_the_line_cannot_deliver_is_refused(tmp_path: Path) -> None:
    """Peers can never give a PC more than its ADSL line's 8 Mbit/s: a fallback threshold
    above it would quietly send every download to the origin."""
    found = problems(tmp_path, MINI.replace("upload_rate: 256kbit",
                                            "upload_rate: 256kbit, fallback_below: 20Mbit"))
    assert len(found) == 1
    assert ("nodes.pc.bittorrent.fallback_below: 20mbit is more than the links can carry: "
            "the narrowest download on the way into pc is 8mbit: peers could never "
            "deliver that much") in found[0]
    _, at_the_line = load(tmp_path, MINI.replace(
        "upload_rate: 256kbit", "upload_rate: 256kbit, fallback_below: 8Mbit"))
    build_plan(at_the_line)  # up to the line's rate is fine


def test_a_pc_without_tracker_or_a_bad_piece_size_is_refused(tmp_path: Path) -> None:
    text = MINI.replace("  tracker: {kind: tracker, uplink: {to: internet}}\n", "")
    text = text.replace("size: 1MB}", "size: 1MB, piece_size: 100KB}")
    found = "\n".join(problems(tmp_path, text))
    assert "needs exactly one node of kind tracker" in found
    assert "piece_size 102400 B: use a power of two" in found


def test_each_cdn_node_declares_the_episodes_it_will_write() -> None:
    """What the state directory must hold: the origin's catalogue, a preloaded PC's whole
    catalogue, a viewing PC the episodes it asks for (2 here)."""
    from testbed.nodes.registry import default_registry

    plan = build_plan(load_topology(REPO / "topologies" / "p2p-cdn.yaml",
                                    {**SMALL, "episode_size": "100MB"}))
    kinds = default_registry()
    need = {n.name: kinds.get(n.kind).setup(n, plan).disk_bytes
            for n in plan.nodes.values() if n.namespace}
    mb = 2**20
    assert need["origin"] == 4 * 100 * mb and need["seed01"] == 4 * 100 * mb
    assert {need[f"home00{i}"] for i in (1, 2, 3)} == {2 * 100 * mb}
    assert need["tracker"] == 0 and need["internet"] == 0
    assert sum(need.values()) == 1400 * mb


def test_episodes_that_do_not_fit_the_state_directory_are_refused(tmp_path: Path,
                                                                  monkeypatch) -> None:  # noqa: ANN001
    """/run/testbed is often a tmpfs of a tenth of the memory: the lab must say so before
    it builds, not fail with a full disk in the middle of a run."""
    import shutil
    from collections import namedtuple

    from testbed.backends.capacity import check_disk
    from testbed.errors import BackendError

    usage = namedtuple("usage", "total used free")
    mb = 2**20
    monkeypatch.setattr(shutil, "disk_usage", lambda _: usage(2400 * mb, 1900 * mb, 500 * mb))
    need = {"origin": 400 * mb, "seed01": 400 * mb, "home001": 200 * mb, "tracker": 0}
    with pytest.raises(BackendError) as info:
        check_disk("p2pcdn", need, tmp_path / "state" / "p2pcdn")
    message = str(info.value)
    assert "cannot hold lab 'p2pcdn'" in message
    assert (f"disk: the nodes may write ~1,000 MB into {tmp_path}/state/p2pcdn (most: "
            "origin 400 MB, seed01 400 MB, home001 200 MB), its filesystem has 500 MB "
            "free") in message
    assert "--state-dir" in message
    check_disk("p2pcdn", {"origin": 400 * mb}, tmp_path)  # fits with room to spare
    check_disk("p2pcdn", {"tracker": 0}, tmp_path)  # nothing to write: no check


def test_cdn_sections_only_apply_to_their_kinds(tmp_path: Path) -> None:
    found = problems(tmp_path, MINI.replace("  nat: {kind: nat,",
                                            "  nat: {kind: nat, bittorrent: {},"))
    assert any("bittorrent: does not apply to kind nat; it applies to: bt_peer" in p
               for p in found)


# --- outcome ------------------------------------------------------------------------------

def test_no_cdn_no_queries(tmp_path: Path) -> None:
    plan = build_plan(load_topology(REPO / "topologies" / "skype-2007.yaml",
                                    {"homes": "2", "supernodes": "1", "corp_hosts": "1"}))
    assert cdn_queries(plan, 1.0) == {}


def test_the_origin_spike_and_the_peer_share_per_phase() -> None:
    trigger = Trigger(start=10.0, end=12.0)
    assert phases(trigger, 100.0) == {"before": (0.0, 10.0), "wave": (10.0, 72.0)}
    ts = [float(t) for t in range(0, 41)]
    origin = [(t, 100.0 if t < 10 else 800.0 if t < 30 else 200.0) for t in ts]
    peer = [(t, 900.0 if t < 10 else 200.0) for t in ts]
    web = [(t, 100.0 if t < 10 else 800.0) for t in ts]
    out = summarize_cdn({"origin_egress_bytes_per_s": origin, "peer_bytes_per_s": peer,
                         "web_seed_bytes_per_s": web,
                         "seeds_online": [(t, 5.0 if t < 11 else 2.0) for t in ts],
                         "downloads_stalled": [(t, 1.0 if t == 20 else 0.0) for t in ts]},
                        trigger, 40.0)
    assert out["origin_mean_bytes_per_s_before"] == 100
    assert out["origin_peak_bytes_per_s"] == 800 and out["origin_spike_factor"] == 8.0
    assert out["peer_share_before"] == pytest.approx(0.9, abs=0.05)
    assert out["peer_share_wave"] == pytest.approx(0.2, abs=0.03)
    assert out["seeds_online_low"] == 2.0 and out["downloads_stalled_max"] == 1.0


def test_window_figures_anchor_a_wave_and_its_control_alike(tmp_path: Path) -> None:
    """benchmarks/bench_cdn_wave.py compares a wave run with its control over the same
    windows, anchored at each run's first mark (the control reboots nothing)."""
    import json
    import sys

    from testbed.metrics.cdn_outcome import window_figures

    series = {"origin_egress_bytes_per_s": [(float(t), 1e5 if t < 50 else 5e5)
                                            for t in range(200)],
              "peer_bytes_per_s": [(float(t), 9e5 if t < 50 else 5e5) for t in range(200)],
              "web_seed_bytes_per_s": [(float(t), 1e5 if t < 50 else 5e5)
                                       for t in range(200)]}
    assert window_figures(series, 50.0, 140.0) == {"origin_mean_bytes_per_s": 500000,
                                                   "peer_share": 0.5}
    assert window_figures(series, 0.0, 50.0)["peer_share"] == pytest.approx(0.9, abs=0.01)
    assert window_figures({}, 0.0, 10.0) == {"origin_mean_bytes_per_s": None,
                                             "peer_share": None}
    run = tmp_path / "control-s2007"
    run.mkdir()
    (run / "run.json").write_text(json.dumps({"run_id": "x"}))
    (run / "series.csv").write_text("t,series,value\n" + "".join(
        f"{t:g},{name},{v}\n" for name, points in series.items() for t, v in points))
    (run / "steps.jsonl").write_text(json.dumps(
        {"action": "mark", "planned": 0.0, "actual": 50.0, "text": "the wave would start"})
        + "\n")
    (run / "summary.json").write_text(json.dumps({"downloads_completed": 32,
                                                  "downloads_failed": 0,
                                                  "completion_p95_s": 108.0}))
    sys.path.insert(0, str(REPO))
    from benchmarks.bench_cdn_wave import figures

    found = figures(run)
    assert found["origin_mbit_before"] == 0.8 and found["origin_mbit_wave_window"] == 4.0
    assert found["peer_share_wave_window"] == 0.5 and found["downloads_completed"] == 32


def test_every_cdn_field_and_metric_is_documented() -> None:
    import dataclasses
    import re

    from testbed.metrics.cdn_outcome import cdn_queries
    from testbed.p2p.client import Metrics

    text = (REPO / "docs" / "cdn.md").read_text()
    documented = set(re.findall(r"`([a-z_0-9]+)", text))
    for cls in (OriginSettings, BitTorrentSettings):
        for field in dataclasses.fields(cls):
            assert field.name in documented, f"{cls.__name__}.{field.name} not in docs/cdn.md"
    names = {m.name for m in Metrics().registry.collect()}
    assert len(names) >= 10
    for name in names:  # counters are collected without their _total suffix
        assert name in documented or f"{name}_total" in documented, name
    plan = build_plan(load_topology(REPO / "topologies" / "p2p-cdn.yaml", SMALL))
    for series in cdn_queries(plan, 1.0):
        assert series in documented, series


def test_a_cdn_run_reports_its_pcs_and_origin_as_it_plays(tmp_path: Path) -> None:
    """The run's progress line for a CDN lab (no overlay peers) shows the CDN's state, not
    an overlay's 'online 0.0%  supernodes 0'."""
    from types import SimpleNamespace

    from testbed.scenario.run.watcher import progress_line

    plan = build_plan(load_topology(REPO / "topologies" / "p2p-cdn.yaml", SMALL))
    queries = cdn_queries(plan, 1.0)
    answers = {queries["pcs_up"]: 4.0, queries["origin_egress_bytes_per_s"]: 133750.0,
               queries["peer_share"]: 0.53, queries["downloads_active"]: 2.0}
    prometheus = SimpleNamespace(scalar=answers.get)
    engine = SimpleNamespace(elapsed=lambda: 92.2, current_step=4, done=5)
    line = progress_line(engine, prometheus, 0, 1.0, 6, 20, 300, cdn=queries)  # type: ignore[arg-type]
    assert line == ("   t=  92.2s/300s  step 5/6  events 5/20  PCs up 4  origin 1.07 Mbit/s"
                    "  from peers 53%  downloads 2")
    quiet = progress_line(engine, None, 0, 1.0, 6, 20, 300, cdn=queries)  # type: ignore[arg-type]
    assert quiet.endswith("PCs up ?  origin ?  from peers ?  downloads ?")
    assert "supernodes" in progress_line(engine, prometheus, 0, 1.0, 6, 20, 300,  # type: ignore[arg-type]
                                         cdn={})


class _CdnPrometheus:
    """A finished CDN run's Prometheus: every range query answers with the same series
    (an absent overlay's online fraction is `vector(0)`, so 0 throughout), every instant
    query with 3."""

    def __init__(self, start: float, end: float) -> None:
        self.values = [[start + t, "0"] for t in range(int(end - start) + 1)]

    def query_range(self, promql: str, start: float, end: float, step: float
                    ) -> list[dict[str, object]]:
        per_user = promql.startswith("peer_logged_in")  # one series per overlay peer: none
        return [] if per_user else [{"metric": {}, "values": self.values}]

    def query(self, promql: str, at: float | None = None) -> list[dict[str, object]]:
        return [{"metric": {}, "value": [at, "3"]}]


def test_a_cdn_run_is_not_classified_by_an_absent_overlay(tmp_path: Path) -> None:
    """summary.json's outcome class judges users' online fraction; a CDN lab has none, and
    its 0 % must not read as 'metastable'."""
    import json

    from testbed.scenario.run.results import write_outcome

    plan = build_plan(load_topology(REPO / "topologies" / "p2p-cdn.yaml", SMALL))
    steps = [{"action": "host_down", "node": "seed01", "actual": 10.0},
             {"action": "host_up", "node": "seed01", "actual": 40.0}]
    (tmp_path / "steps.jsonl").write_text("".join(json.dumps(s) + "\n" for s in steps))
    summary = write_outcome(tmp_path, _CdnPrometheus(1000.0, 1200.0), [], 0, 1000.0, 1200.0,
                            1.0, True, plan=plan)
    assert summary["outcome_class"] == "undetermined"
    assert summary["outcome_reason"].startswith("no overlay peers or SIP phones")
    assert "final_online_median" not in summary and summary["time_to_recover_s"] is None
    assert summary["downloads_completed"] == 3  # the CDN's own outcome is there


def test_a_request_due_while_the_pc_was_rebooting_counts_once(tmp_path: Path) -> None:
    """bt_downloads_requested_total over a reboot: the request made before it is not
    counted again, the one that fell due while the PC was down counts when it is back."""
    pytest.importorskip("libtorrent")
    from testbed.p2p.client import Client

    config = {"address": "127.0.0.1", "port": 0, "origin": "http://127.0.0.1:9",
              "requests": [[5.0, 1], [50.0, 2]], "episodes": 2, "fallback_below": None}

    def requested(client: Client) -> float | None:  # what its /metrics would say
        return client.metrics.registry.get_sample_value("bt_downloads_requested_total")

    before = Client(config, tmp_path)  # the PC's first life: up for 30 s
    first = before.state["first_start"]
    before.start()
    before.step(first + 30)
    assert requested(before) == 1
    del before
    after = Client(config, tmp_path)  # back from a reboot at 60 s, state from its disk
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("time.time", lambda: first + 60)
        after.start()
    after.step(first + 61)
    assert requested(after) == 1  # episode 2, due at 50 s; episode 1 was counted before
    assert sorted(after.downloads) == [1, 2]
