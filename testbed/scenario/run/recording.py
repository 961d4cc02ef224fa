"""Recording a run: the declared packet captures (tcpdump in the nodes' namespaces), the
testbed exporter (node up/down, restarts, scenario events, interface counters) and the
run's own Prometheus in the lab's management network, which scrapes it and every peer."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from testbed.capture.declared import CaptureSet
from testbed.lab.lab import Lab
from testbed.metrics.exporter import TestbedExporter
from testbed.metrics.prometheus import PrometheusServer
from testbed.p2p.targets import cdn_targets
from testbed.scenario.run.options import Prepared, RunOptions


class Recording:
    def __init__(self, prepared: Prepared, options: RunOptions, run_dir: Path,
                 say: Callable[[str], None]) -> None:
        self.prepared = prepared
        self.options = options
        self.run_dir = run_dir
        self.say = say
        self.captures = CaptureSet(prepared.captures, run_dir / "captures")
        self.exporter: TestbedExporter | None = None
        self.prometheus: PrometheusServer | None = None

    @property
    def url(self) -> str | None:
        """Where the run's Prometheus answers (its forwarded UI), while it runs."""
        if self.prometheus is None or self.prometheus.forwarder is None:
            return None
        return self.prometheus.forwarder.url

    def start_captures(self) -> None:
        if not self.captures.placed:
            return
        self.captures.start()
        self.say(f"== capturing on {len(self.captures.running)} interfaces: "
                 + ", ".join(c.name for c in self.captures.running))

    def start_monitoring(self, lab: Lab) -> TestbedExporter:
        options = self.options
        self.exporter = TestbedExporter(self.prepared.plan,
                                        interval=max(1.0, options.scrape_interval))
        target = self.exporter.start()
        self.prometheus = PrometheusServer(self.prepared.plan, lab.state,
                                           self.run_dir / "prometheus",
                                           lab.backend, options.scrape_interval,
                                           options.ui_port, options.ui_address)
        overlay = self.prepared.topology.overlay
        url = self.prometheus.start(overlay.metrics_port if overlay else 9100, target)
        cdn = len(cdn_targets(self.prepared.plan))  # the CDN's origin and PCs, if any
        scraped = f"{len(self.prepared.peers) + cdn + 1} {'targets' if cdn else 'peers'}"
        self.say(f"== Prometheus: {url}  (scrapes {scraped} every "
                 f"{options.scrape_interval:g}s; open it in a browser during the run)")
        return self.exporter

    def stop_captures(self) -> None:
        for problem in self.captures.stop(relative_to=self.run_dir):
            self.say(f"== capture problem: {problem}")
        for entry in self.captures.entries:
            self.say(f"   capture {entry['name']}: {entry['packets']} packets, "
                     f"{entry['dropped'] or 0} dropped -> {entry['file']}")

    def stop(self) -> None:
        """Prometheus and the exporter (after the results were read from them)."""
        if self.prometheus is not None:
            self.prometheus.stop()
        if self.exporter is not None:
            self.exporter.stop()
