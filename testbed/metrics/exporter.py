"""The testbed's own Prometheus exporter: what only the testbed knows.

- `testbed_node_up{node}`: 1 unless a scenario has the node down (rebooting) or it is
  held back until an add_nodes step;
- `testbed_node_restarts_total{node}`: reboots and restarts done by scenario steps;
- `testbed_node_crashes_total{node}`: services found dead that no step ended;
- `testbed_link_{rx,tx}_{bytes,packets,dropped}_total{node,iface}`: the kernel's own
  interface counters of every node, read from inside each namespace;
- `testbed_scenario_events_total{action}` and `testbed_scenario_step`: executed steps.

It serves on the management hub address, inside the lab's management namespace, so the
lab's Prometheus scrapes it like any peer. Counters are sampled by one background thread
(entering each namespace in turn, no process per read) and served from that sample.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from testbed.plan.model import NetworkPlan
from testbed.process import namespaces

EXPORTER_PORT = 9101
FIELDS = {"rx_bytes": 0, "rx_packets": 1, "rx_dropped": 3,
          "tx_bytes": 8, "tx_packets": 9, "tx_dropped": 11}


def read_net_dev(text: str) -> dict[str, dict[str, int]]:
    """/proc/net/dev as {interface: {rx_bytes, ...}} (the loopback left out)."""
    counters: dict[str, dict[str, int]] = {}
    for line in text.splitlines()[2:]:
        name, _, values = line.partition(":")
        name = name.strip()
        if not values or name == "lo":
            continue
        numbers = [int(v) for v in values.split()]
        counters[name] = {key: numbers[i] for key, i in FIELDS.items()}
    return counters


class TestbedExporter(Collector):
    __test__ = False  # not a pytest test class despite the name

    def __init__(self, plan: NetworkPlan, interval: float = 2.0) -> None:
        self.plan = plan
        self.interval = interval
        self.nodes = [n.name for n in plan.nodes.values() if n.namespace]
        self._lock = threading.Lock()
        self._up = {n.name: 0 if n.node.held_back else 1 for n in plan.nodes.values()
                    if n.namespace}  # held-back nodes are off until add_nodes
        self._restarts = dict.fromkeys(self.nodes, 0)
        self._crashes = dict.fromkeys(self.nodes, 0)
        self._events: dict[str, int] = {}
        self._step = 0
        self._links: dict[tuple[str, str], dict[str, int]] = {}
        self._stop = threading.Event()
        self._sampler: threading.Thread | None = None
        self._server: Any = None

    # --- what the engine reports ----------------------------------------------------
    def node_down(self, node: str) -> None:
        with self._lock:
            self._up[node] = 0

    def node_up(self, node: str, restarted: bool = True) -> None:
        with self._lock:
            self._up[node] = 1
            if restarted:
                self._restarts[node] = self._restarts.get(node, 0) + 1

    def crashed(self, node: str) -> None:
        with self._lock:
            self._crashes[node] = self._crashes.get(node, 0) + 1

    def event(self, action: str, step: int) -> None:
        with self._lock:
            self._events[action] = self._events.get(action, 0) + 1
            self._step = step

    def is_up(self, node: str) -> bool:
        with self._lock:
            return bool(self._up.get(node, 1))

    # --- serving --------------------------------------------------------------------
    def start(self) -> str:
        """Serve on the management hub; returns the scrape target host:port."""
        registry = CollectorRegistry()
        registry.register(self)
        self.sample()
        self._sampler = threading.Thread(target=self._sample_loop, name="link-counters",
                                         daemon=True)
        self._sampler.start()
        hub = self.plan.mgmt_bridge_address.split("/")[0]
        with namespaces.inside(self.plan.mgmt_namespace):
            self._server, _ = start_http_server(EXPORTER_PORT, addr=hub, registry=registry)
        return f"{hub}:{EXPORTER_PORT}"

    def stop(self) -> None:
        self._stop.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def _sample_loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def sample(self) -> None:
        links: dict[tuple[str, str], dict[str, int]] = {}
        for node in self.nodes:
            ns = self.plan.nodes[node].namespace or ""
            try:
                with namespaces.inside(ns):
                    text = Path("/proc/thread-self/net/dev").read_text()
            except Exception:  # noqa: BLE001 - a namespace gone at teardown: skip it
                continue
            mgmt = self.plan.nodes[node].mgmt_interface
            for iface, counters in read_net_dev(text).items():
                if iface != mgmt:
                    links[(node, iface)] = counters
        with self._lock:
            self._links = links

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        with self._lock:
            up, restarts, crashes = dict(self._up), dict(self._restarts), dict(self._crashes)
            events, step, links = dict(self._events), self._step, dict(self._links)
        yield _family(GaugeMetricFamily("testbed_node_up", "1 unless a scenario has the node "
                                        "down", labels=["node"]), up.items())
        yield _family(CounterMetricFamily("testbed_node_restarts", "restarts done by "
                                          "scenario steps", labels=["node"]), restarts.items())
        yield _family(CounterMetricFamily("testbed_node_crashes", "services found dead that "
                                          "no step ended", labels=["node"]), crashes.items())
        yield _family(CounterMetricFamily("testbed_scenario_events", "scenario events "
                                          "executed", labels=["action"]), events.items())
        yield GaugeMetricFamily("testbed_scenario_step", "index of the last step executed",
                                value=step)
        for key in FIELDS:
            family = CounterMetricFamily(f"testbed_link_{key}", f"kernel interface counter "
                                         f"{key} (inside the node)", labels=["node", "iface"])
            for (node, iface), counters in sorted(links.items()):
                family.add_metric([node, iface], counters[key])
            yield family


def _family(family: GaugeMetricFamily | CounterMetricFamily,
            values: Iterable[tuple[str, int]]) -> GaugeMetricFamily | CounterMetricFamily:
    for label, value in sorted(values):
        family.add_metric([label], value)
    return family
