"""The lab's real Prometheus server (Debian's `prometheus`), in the management namespace.

It scrapes every reference peer's /metrics on its management address and the testbed
exporter, stores its TSDB in the run's results directory, and is reachable from the
machine through a loopback forwarder (see forward.py). At the end of a run a TSDB
snapshot (head block included) is taken, so `testbed results serve RUN` can reopen it.
"""

from __future__ import annotations

import json
import shutil
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from testbed.backends.base import ProcessControl, StateStore
from testbed.errors import LabError
from testbed.metrics.forward import LoopbackForwarder
from testbed.plan.model import NetworkPlan
from testbed.process.supervisor import is_alive
from testbed.sip.monitor import scrape_configs as sip_scrape_configs
from testbed.sip.monitor import start_poller

PROMETHEUS_PORT = 9090


def scrape_targets(plan: NetworkPlan, metrics_port: int) -> list[dict[str, Any]]:
    """One static target per reference-peer node, labelled with node, kind and group
    (and held_back="true" for capacity a scenario adds later, which is not a user)."""
    targets = []
    for node in plan.nodes.values():
        if node.kind not in ("peer", "login") or node.node.command is not None:
            continue
        if not node.mgmt_address:
            continue
        address = node.mgmt_address.split("/")[0]
        labels = {"node": node.name, "kind": node.kind}
        if node.node.group:
            labels["group"] = node.node.group
        if node.node.held_back:
            labels["held_back"] = "true"
        targets.append({"targets": [f"{address}:{metrics_port}"], "labels": labels})
    return targets


def config_text(plan: NetworkPlan, metrics_port: int, exporter: str, interval: float) -> str:
    every = _duration(max(0.2, interval))
    config: dict[str, Any] = {
        "global": {"scrape_interval": every, "evaluation_interval": every,
                   "scrape_timeout": _duration(max(0.2, min(interval, 10) * 0.8)),
                   "external_labels": {"lab": plan.lab}},
        "scrape_configs": [
            {"job_name": "peers", "static_configs": scrape_targets(plan, metrics_port)},
            {"job_name": "testbed", "static_configs": [{"targets": [exporter]}]},
            *sip_scrape_configs(plan),  # Kamailio and the UA poller, in SIP labs only
        ],
    }
    from testbed.p2p.targets import cdn_targets  # the P2P CDN's origin and PCs, if any

    if cdn := cdn_targets(plan):
        config["scrape_configs"].append({"job_name": "cdn", "static_configs": cdn})
    return yaml.safe_dump(config, sort_keys=False)


def _duration(seconds: float) -> str:
    """Prometheus wants whole units: 1s, 800ms."""
    return f"{round(seconds * 1000)}ms"


class PrometheusServer:
    def __init__(self, plan: NetworkPlan, state: StateStore, workdir: Path,
                 processes: ProcessControl, interval: float = 1.0, ui_port: int = 9090,
                 ui_address: str = "127.0.0.1") -> None:
        self.plan = plan
        self.state = state
        # absolute: Prometheus runs with the work dir as its cwd, so a relative path
        # (`testbed run --results results`) would be resolved twice
        self.workdir = workdir.resolve()
        self.data = self.workdir / "data"
        self.processes = processes
        self.interval = interval
        self.ui_port = ui_port
        self.ui_address = ui_address
        self.hub = plan.mgmt_bridge_address.split("/")[0]
        self.forwarder: LoopbackForwarder | None = None
        self.record: Any = None
        self.poller: Any = None  # the SIP UAs' exporter, in SIP labs

    @property
    def url(self) -> str:
        if self.forwarder is None:
            raise LabError("Prometheus is not running")
        return self.forwarder.url

    def start(self, metrics_port: int, exporter: str, timeout: float = 60) -> str:
        binary = shutil.which("prometheus")
        if binary is None:
            raise LabError("prometheus is not installed; run the set-up (scripts/setup.sh)")
        self.data.mkdir(parents=True, exist_ok=True)
        config = self.workdir / "prometheus.yml"
        config.write_text(config_text(self.plan, metrics_port, exporter, self.interval))
        self.poller = start_poller(self.plan, self.state, self.processes, self.workdir,
                                   self.interval)
        self.record = self.processes.start_process(
            node="", service="prometheus", namespace=self.plan.mgmt_namespace,
            argv=(binary, f"--config.file={config}", f"--storage.tsdb.path={self.data}",
                  f"--web.listen-address={self.hub}:{PROMETHEUS_PORT}",
                  "--web.enable-admin-api", "--storage.tsdb.retention.time=100y",
                  "--log.level=warn"),
            env={}, cwd=self.workdir, log=self.workdir / "prometheus.log")
        self.state.record({"op": "process", **self.record.__dict__})
        self.forwarder = LoopbackForwarder(self.plan.mgmt_namespace,
                                           (self.hub, PROMETHEUS_PORT), self.ui_port,
                                           address=self.ui_address)
        deadline = time.monotonic() + timeout
        while not self._ready():
            if not is_alive(self.record):
                raise LabError(f"Prometheus exited at start; see {self.workdir}/prometheus.log")
            if time.monotonic() > deadline:
                raise LabError(f"Prometheus not ready after {timeout:.0f}s; see "
                               f"{self.workdir}/prometheus.log")
            time.sleep(0.2)
        return self.url

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as reply:
                return bool(reply.status == 200)
        except (OSError, urllib.error.URLError):
            return False

    # --- queries --------------------------------------------------------------------
    def query(self, promql: str, at: float | None = None) -> list[dict[str, Any]]:
        params = {"query": promql}
        if at is not None:
            params["time"] = f"{at:.3f}"
        return self._get("/api/v1/query", params)["result"]

    def query_range(self, promql: str, start: float, end: float, step: float
                    ) -> list[dict[str, Any]]:
        params = {"query": promql, "start": f"{start:.3f}", "end": f"{end:.3f}",
                  "step": f"{step:g}"}
        return self._get("/api/v1/query_range", params)["result"]

    def scalar(self, promql: str) -> float | None:
        """The value of a query returning one sample, None when it returns none."""
        result = self.query(promql)
        return float(result[0]["value"][1]) if result else None

    def _get(self, path: str, params: dict[str, str]) -> dict[str, Any]:
        url = f"{self.url}{path}?{urllib.parse.urlencode(params)}"
        try:
            with urllib.request.urlopen(url, timeout=30) as reply:
                body = json.load(reply)
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")[:300]
            raise LabError(f"Prometheus refused {params.get('query')!r}: {detail}") from exc
        except OSError as exc:
            raise LabError(f"Prometheus did not answer {path}: {exc}") from exc
        return body["data"]

    # --- the end --------------------------------------------------------------------
    def snapshot(self, into: Path) -> Path | None:
        """A TSDB snapshot (head included) moved to `into`; None if the server is gone."""
        return take_snapshot(self.url, self.data, into, timeout=60)

    def stop(self) -> None:
        if self.forwarder is not None:
            self.forwarder.close()
        if self.record is not None:
            self.processes.stop_processes([self.record], grace=10)
        if self.poller is not None:
            self.processes.stop_processes([self.poller], grace=3)


def take_snapshot(url: str, data: Path, into: Path, timeout: float) -> Path | None:
    """Ask the Prometheus at `url` (storing in `data`) for a TSDB snapshot, head included,
    and move it to `into`; None when the server does not answer."""
    request = urllib.request.Request(f"{url}/api/v1/admin/tsdb/snapshot", method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as reply:
            name = json.load(reply)["data"]["name"]
    except (OSError, KeyError, ValueError):
        return None
    source = data / "snapshots" / name
    if into.exists():
        shutil.rmtree(into)
    shutil.move(str(source), into)
    return into
