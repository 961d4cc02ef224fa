"""A Prometheus started on a run's recorded TSDB after the run, for as long as a command
needs it (`testbed check`, `testbed results recover`), then stopped.

It serves a copy of the data (the run stays exactly as recorded; a killed run's live
data directory may even still be locked by its orphaned Prometheus), on the machine's
loopback at a free port, scraping nothing. The same run therefore gives the same
verdicts now and later, whatever else listens on 127.0.0.1:9090 by then.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any

from testbed.errors import LabError

LOOPBACK = "127.0.0.1"


def recorded_tsdb(run_dir: Path) -> Path | None:
    """The run's TSDB: its snapshot (tsdb/, a finished run), else its Prometheus's data
    directory (prometheus/data/, a run killed before the snapshot); None if neither."""
    for candidate in (run_dir / "tsdb", run_dir / "prometheus" / "data"):
        if candidate.is_dir() and any(candidate.iterdir()):
            return candidate
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


class OfflinePrometheus:
    """`with OfflinePrometheus(tsdb) as prom:` prom.url, prom.query_range(...)."""

    def __init__(self, tsdb: Path, timeout: float = 60.0) -> None:
        self.tsdb = tsdb
        self.timeout = timeout
        self.url = ""
        self._work: tempfile.TemporaryDirectory[str] | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> OfflinePrometheus:
        binary = shutil.which("prometheus")
        if binary is None:
            raise LabError("prometheus is not installed; run the set-up (scripts/setup.sh)")
        self._work = tempfile.TemporaryDirectory(prefix="testbed-tsdb-")
        work = Path(self._work.name)
        data = work / "data"
        # the lock of a still-running (orphaned) Prometheus must not come along
        shutil.copytree(self.tsdb, data, ignore=shutil.ignore_patterns("lock", "snapshots"))
        config = work / "prometheus.yml"
        config.write_text("global: {}\nscrape_configs: []\n")
        port = free_port()
        self.url = f"http://{LOOPBACK}:{port}"
        log = open(work / "prometheus.log", "wb")  # noqa: SIM115 - closed with the dir
        self._proc = subprocess.Popen(
            [binary, f"--config.file={config}", f"--storage.tsdb.path={data}",
             f"--web.listen-address={LOOPBACK}:{port}", "--web.enable-admin-api",
             "--storage.tsdb.retention.time=100y", "--log.level=warn"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True)
        log.close()
        deadline = time.monotonic() + self.timeout
        while not self._ready():
            if self._proc.poll() is not None or time.monotonic() > deadline:
                text = (work / "prometheus.log").read_text(errors="replace")[-800:]
                self.__exit__(None, None, None)
                raise LabError(f"Prometheus on the recorded TSDB {self.tsdb} did not start: "
                               f"{text.strip() or 'no output'}")
            time.sleep(0.2)
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(30)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None
        if self._work is not None:
            self._work.cleanup()
            self._work = None

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as reply:
                return bool(reply.status == 200)
        except OSError:
            return False

    def _get(self, path: str, params: dict[str, str] | None = None) -> Any:
        url = f"{self.url}{path}" + (f"?{urllib.parse.urlencode(params)}" if params else "")
        try:
            with urllib.request.urlopen(url, timeout=60) as reply:
                return json.load(reply)["data"]
        except OSError as exc:
            raise LabError(f"the recorded TSDB's Prometheus did not answer {path}: {exc}"
                           ) from exc

    def query(self, promql: str, at: float | None = None) -> list[dict[str, Any]]:
        params = {"query": promql}
        if at is not None:
            params["time"] = f"{at:.3f}"
        return list(self._get("/api/v1/query", params)["result"])

    def query_range(self, promql: str, start: float, end: float, step: float
                    ) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._get("/api/v1/query_range", {
            "query": promql, "start": f"{start:.3f}", "end": f"{end:.3f}",
            "step": f"{step:g}"})["result"]
        return result

    def last_sample_unix(self) -> float | None:
        """When the last sample was recorded (the end of a run that stopped abruptly):
        the newest of the head (replayed from the write-ahead log) and the blocks."""
        ends: list[float] = []
        head = self._get("/api/v1/status/tsdb").get("headStats") or {}
        if head.get("numSeries") and head.get("maxTime"):
            ends.append(float(head["maxTime"]) / 1000)
        for meta in self.tsdb.glob("*/meta.json"):
            try:
                ends.append(float(json.loads(meta.read_text())["maxTime"]) / 1000)
            except (OSError, KeyError, ValueError):
                continue
        return max(ends) if ends else None

    def snapshot(self, into: Path) -> Path | None:
        """A TSDB snapshot of the data (head included) moved to `into`."""
        from testbed.metrics.prometheus import take_snapshot

        assert self._work is not None
        return take_snapshot(self.url, Path(self._work.name) / "data", into, timeout=120)
