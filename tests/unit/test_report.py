"""The run report and `testbed compare`: HTML and PNGs from synthetic results directories,
and errors that name the broken file and line."""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path
from typing import Any

import pytest

from testbed.errors import ResultsError
from testbed.metrics.compare import write_comparison
from testbed.metrics.plots import MARK_CHARS, place_marks
from testbed.metrics.report import write_report
from testbed.metrics.series import load_run, load_series

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
PLOTS = ("online.png", "login.png", "supernodes.png", "clients.png")


def online(t: float, recovers: bool) -> float:
    """Steady at 100 %, a dip from the wave at t=10 s; the fixed run comes back by t=90."""
    if t < 10:
        return 1.0
    if recovers:
        return max(0.6, 1 - (t - 10) / 75) if t < 40 else min(1.0, 0.6 + (t - 40) / 120)
    return max(0.04, 1 - (t - 10) / 40) + (0.2 * (t - 150) / 150 if t > 150 else 0.0)


def series_rows(recovers: bool, skip: frozenset[str] = frozenset(), end: int = 300
                ) -> list[str]:
    peak = 300.0 if recovers else 5000.0
    rows = ["t,series,value"]
    for t in range(end + 1):
        storm = 0.0 if t < 12 else peak * math.exp(-((t - 60) / 40) ** 2) + 20
        values = {
            "online_fraction": online(t, recovers),
            "login_attempts_per_s": storm,
            "login_server_requests_per_s": min(storm, 200 if recovers else storm / 4),
            "login_server_ok_per_s": min(storm, 150),
            "supernodes": 10 if t < 15 or recovers and t > 80 else (6 if recovers else 2),
            "clients_per_supernode_mean": 16 if t < 15 else (20 if recovers else 8),
            "clients_per_supernode_max": 24 if t < 15 else (30 if recovers else 60),
            "hosts_down": 64 if 10 <= t < 50 else 0,
        }
        rows += [f"{t},{name},{value:.6g}" for name, value in values.items() if name not in skip]
    return rows


def make_run(parent: Path, run_id: str, scenario: str = "skype-2007", recovers: bool = False,
             complete: bool = True, skip: frozenset[str] = frozenset(), end: int = 300,
             summary: dict[str, Any] | None = None) -> Path:
    run_dir = parent / run_id
    run_dir.mkdir(parents=True)
    info = {"run_id": run_id, "topology": "topologies/skype-2007.yaml", "scenario": scenario,
            "seed": 2007, "started": "2024-11-22T11:00:00+00:00", "duration_s": float(end),
            "complete": complete, "trigger": {"start": 10.0, "end": 38.5},
            "login_capacity": 200.0, "peers": 178, "time_scale": 0.2,
            "policy": "fixed" if recovers else "2007", "prometheus_url": None}
    (run_dir / "run.json").write_text(json.dumps(info))
    (run_dir / "series.csv").write_text("\n".join(series_rows(recovers, skip, end)) + "\n")
    steps = [{"planned": 10.0, "actual": 10.02, "action": "mark", "nodes": 0, "step": 1,
              "outcome": "steady state", "text": "steady state"},
             {"planned": 10.0, "actual": 10.1, "action": "host_down", "nodes": 64, "step": 2,
              "outcome": "down", "node": "home001"},
             {"planned": 50.0, "actual": 51.3, "action": "mark", "nodes": 0, "step": 4,
              "outcome": "every rebooted PC is back", "text": "every rebooted PC is back"}]
    (run_dir / "steps.jsonl").write_text("".join(json.dumps(s) + "\n" for s in steps))
    if summary is None:
        summary = {"min_online_fraction": 0.6 if recovers else 0.0412,
                   "time_of_min_s": 40.0 if recovers else 50.0,
                   "time_to_90_s": 66.0 if recovers else None,
                   "time_to_95_s": 72.5 if recovers else None,
                   "final_online_fraction": 1.0 if recovers else 0.2412,
                   "peak_login_attempts_per_s": 320.0 if recovers else 5020.0,
                   "peak_login_server_requests_per_s": 200.0 if recovers else 1255.0,
                   "amplification": 1.4 if recovers else 37.25, "supernodes_low": 6.0,
                   "calls_failed": 3.0, "complete": complete}
    (run_dir / "summary.json").write_text(json.dumps(summary))
    return run_dir


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from the PNG signature and IHDR chunk."""
    head = path.read_bytes()[:24]
    assert head[:8] == PNG_MAGIC, f"{path} is not a PNG"
    assert head[12:16] == b"IHDR"
    width, height = struct.unpack(">II", head[16:24])
    return width, height


def assert_plots(directory: Path) -> None:
    for name in PLOTS:
        width, height = png_size(directory / name)
        assert 800 <= width <= 1400 and 300 <= height <= 700, (name, width, height)


# --- the single-run report -------------------------------------------------------------------


def test_report_writes_html_and_valid_pngs(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path, "RUN-1")
    path = write_report(run_dir)
    assert path == run_dir / "report" / "report.html"
    assert_plots(run_dir / "report")
    text = path.read_text()
    for name in PLOTS:
        assert f'<img src="{name}"' in text
    assert "<title>skype-2007 \u2014 run RUN-1</title>" in text
    assert 'href="../steps.jsonl"' in text


def test_report_shows_summary_in_human_units(tmp_path: Path) -> None:
    text = write_report(make_run(tmp_path, "RUN-1")).read_text()
    assert "4.1 %" in text  # min_online_fraction 0.0412
    assert "24.1 %" in text  # final_online_fraction
    assert "never (not within the run)" in text  # time_to_95_s is null
    assert "5,020.0 /s" in text
    assert "1,255.0 /s (6.3x capacity)" in text  # against login_capacity 200
    assert "37.25x" in text
    assert "until 95 % of peers were logged in again" in text  # the one-line explanation


def test_report_shows_the_cdn_outcome_in_words_and_units(tmp_path: Path) -> None:
    """A P2P CDN run's summary.json (testbed.metrics.cdn_outcome): the origin's load in
    Mbit/s, who served the bytes in %, and the completion-time tail in seconds."""
    summary = {"origin_mean_bytes_per_s_before": 133750, "origin_mean_bytes_per_s_wave": 143750,
               "origin_peak_bytes_per_s": 486250, "origin_spike_factor": 3.64,
               "peer_share_before": 0.53, "peer_share_wave": 0.7412,
               "downloads_completed": 32.0, "downloads_failed": 0.0,
               "completion_p95_s": 28.2, "completion_p95_s_after_wave": None,
               "complete": True}
    text = write_report(make_run(tmp_path, "CDN-1", "p2p-cdn-patch-day", summary=summary)
                        ).read_text()
    assert "origin egress before the wave</td><td class=\"num\">1.07 Mbit/s" in text
    assert "origin egress peak</td><td class=\"num\">3.89 Mbit/s" in text
    assert "3.64x" in text
    assert "bytes from peers in the wave</td><td class=\"num\">74.1 %" in text
    assert "completion time, 95th percentile</td><td class=\"num\">28.2 s" in text
    assert "95th percentile</td><td class=\"num\">n/a" in text  # after the wave: none
    assert "origin mean bytes per s" not in text  # no key shown raw


def test_a_cdn_runs_report_leaves_out_the_absent_overlay(tmp_path: Path) -> None:
    """A CDN lab without overlay peers (run.json peers: 0): its own plots, its topology's
    parameters, and no overlay plots, calibration or client policy full of zeros."""
    run_dir = make_run(tmp_path, "CDN-2", "p2p-cdn-patch-day-big-origin",
                       summary={"origin_peak_bytes_per_s": 882500, "complete": True})
    info = json.loads((run_dir / "run.json").read_text())
    info.update(peers=0, topology="topologies/p2p-cdn.yaml",
                params={"seeds": 4, "homes": 16, "origin_rate": "16Mbit"})
    (run_dir / "run.json").write_text(json.dumps(info))
    rows = [f"{t},{name},{value}" for t in range(0, 301, 5) for name, value in
            (("origin_egress_bytes_per_s", 500000.0 if 10 <= t < 60 else 100000.0),
             ("peer_bytes_per_s", 300000.0), ("web_seed_bytes_per_s", 100000.0),
             ("downloads_active", 4.0), ("seeds_online", 10.0))]
    with (run_dir / "series.csv").open("a") as series:
        series.write("\n".join(rows) + "\n")
    text = write_report(run_dir).read_text()
    out = run_dir / "report"
    assert (out / "cdn-bytes.png").is_file() and (out / "cdn-downloads.png").is_file()
    for name in PLOTS:
        assert f'<img src="{name}"' not in text and not (out / name).exists()
    assert "Against the measured outage" not in text
    assert "<th>topology parameters</th><td>seeds=4, homes=16, origin_rate=16Mbit" in text
    assert "client policy" not in text and "overlay peers" not in text
    assert "7.06 Mbit/s" in text  # the origin's peak, in the outcome table


def test_report_gives_recovery_in_real_time(tmp_path: Path) -> None:
    text = write_report(make_run(tmp_path, "RUN-F", "skype-2007-fixed", recovers=True)
                        ).read_text()
    assert "72.5 s (\u2248 6.0 min at real timer speed)" in text  # time scale 0.2
    assert "clock runs 5x faster than real" in text


def test_report_escapes_names(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path, "RUN-1", scenario='<b>storm</b> & "co"')
    text = write_report(run_dir).read_text()
    assert "<b>storm</b>" not in text
    assert "&lt;b&gt;storm&lt;/b&gt; &amp; &quot;co&quot;" in text


def test_missing_series_gives_a_note_not_a_crash(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path, "RUN-1", skip=frozenset({"supernodes",
                                                          "clients_per_supernode_max"}))
    text = write_report(run_dir).read_text()
    assert_plots(run_dir / "report")
    assert "no data: series.csv has no &#x27;supernodes&#x27;" in text
    assert "no data: series.csv has no &#x27;clients_per_supernode_max&#x27;" in text
    assert "no data: series.csv has no &#x27;online_fraction&#x27;" not in text


def test_run_with_only_a_header_still_reports(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path, "RUN-1", complete=False, summary={})
    (run_dir / "series.csv").write_text("t,series,value\n")
    (run_dir / "summary.json").unlink()
    text = write_report(run_dir).read_text()
    assert_plots(run_dir / "report")
    assert "No summary.json" in text
    assert "results up to the start (no samples)" in text


def test_incomplete_run_is_flagged(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path, "RUN-1", complete=False, end=137)
    text = write_report(run_dir).read_text()
    assert "run interrupted: results up to t=137.0 s" in text
    complete = write_report(make_run(tmp_path, "RUN-2")).read_text()
    assert "run interrupted" not in complete


# --- the comparison --------------------------------------------------------------------------


def test_compare_puts_both_runs_in_the_table(tmp_path: Path) -> None:
    runs = [make_run(tmp_path, "A1"), make_run(tmp_path, "B2", "skype-2007-fixed",
                                                recovers=True)]
    path = write_comparison(runs, tmp_path / "cmp")
    assert path == tmp_path / "cmp" / "comparison.html"
    assert_plots(tmp_path / "cmp")
    text = path.read_text()
    assert "<th>skype-2007 (A1)</th><th>skype-2007-fixed (B2)</th>" in text
    row = next(line for line in text.splitlines() if "back to 95 % online" in line)
    assert row.index("never (not within the run)") < row.index("72.5 s")
    assert 'href="../B2/steps.jsonl"' in text


def test_compare_flags_an_interrupted_run(tmp_path: Path) -> None:
    runs = [make_run(tmp_path, "A1"), make_run(tmp_path, "B2", complete=False, end=90)]
    text = write_comparison(runs, tmp_path / "cmp").read_text()
    assert "skype-2007 (B2): run interrupted: results up to t=90.0 s" in text
    assert "skype-2007 (A1): run interrupted" not in text


def test_compare_needs_runs(tmp_path: Path) -> None:
    with pytest.raises(ResultsError, match="at least one run"):
        write_comparison([], tmp_path / "cmp")


# --- broken input ----------------------------------------------------------------------------


def test_bad_csv_line_names_file_and_line(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path, "RUN-1")
    csv_path = run_dir / "series.csv"
    lines = csv_path.read_text().splitlines()
    lines[4] = "4,online_fraction,lots"
    csv_path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ResultsError, match=r"series\.csv:5: value 'lots' of series "
                                           r"'online_fraction' is not a number") as caught:
        write_comparison([run_dir], tmp_path / "cmp")
    assert str(csv_path) in str(caught.value)
    assert not (tmp_path / "cmp" / "comparison.html").exists()


@pytest.mark.parametrize(("line", "message"), [
    ("1,online_fraction", r":3: expected 3 fields \(t,series,value\), found 2"),
    ("soon,online_fraction,1", r":3: time 'soon' is not a number of seconds"),
    ("1,,0.5", r":3: the series name is empty"),
])
def test_malformed_rows(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "series.csv"
    path.write_text(f"t,series,value\n0,online_fraction,1\n{line}\n")
    with pytest.raises(ResultsError, match=message):
        load_series(path)


def test_wrong_header_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "series.csv"
    path.write_text("time,name,value\n0,online_fraction,1\n")
    with pytest.raises(ResultsError, match=r"series\.csv:1: the header is"):
        load_series(path)


def test_series_are_read_sorted_and_gaps_skipped(tmp_path: Path) -> None:
    path = tmp_path / "series.csv"
    path.write_text("t,series,value\n2,a,3\n0,a,1\n1,a,nan\n\n0.5,b,7\n")
    assert load_series(path) == {"a": [(0.0, 1.0), (2.0, 3.0)], "b": [(0.5, 7.0)]}


def test_missing_run_json_names_the_file(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path, "RUN-1")
    (run_dir / "run.json").unlink()
    with pytest.raises(ResultsError, match=r"RUN-1/run\.json: missing"):
        write_report(run_dir)
    with pytest.raises(ResultsError, match=r"RUN-1/run\.json: missing"):
        write_comparison([make_run(tmp_path, "OK"), run_dir], tmp_path / "cmp")


def test_missing_series_csv_names_the_file(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path, "RUN-1")
    (run_dir / "series.csv").unlink()
    with pytest.raises(ResultsError, match=r"RUN-1/series\.csv: missing"):
        write_comparison([run_dir], tmp_path / "cmp")


def test_broken_steps_line_names_file_and_line(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path, "RUN-1")
    with open(run_dir / "steps.jsonl", "a") as out:
        out.write('{"action": "mark", "actual": \n')
    with pytest.raises(ResultsError, match=r"steps\.jsonl:4: not a JSON object"):
        load_run(run_dir)


def test_load_run_reads_marks_and_trigger(tmp_path: Path) -> None:
    run = load_run(make_run(tmp_path, "RUN-1"))
    assert run.trigger == (10.0, 38.5)
    assert run.marks() == [(10.02, "steady state"), (51.3, "every rebooted PC is back")]
    assert run.label == "skype-2007 (RUN-1)"
    assert run.complete


def test_close_marks_take_turns_and_a_third_loses_its_text() -> None:
    places = place_marks([10.0, 11.0, 12.0, 50.0], gap=5.0)
    assert places == [(True, MARK_CHARS // 2), (False, MARK_CHARS // 2), (None, MARK_CHARS),
                      (True, MARK_CHARS)]
