"""The origin's exporter: lighttpd's own counters (mod_status `?auto`) for Prometheus.

Serves on the node's management address (port 9100), read on every scrape:
- `origin_http_sent_bytes_total`: bytes lighttpd sent (its "Total kBytes", x 1024);
- `origin_http_requests_total`: requests it answered ("Total Accesses");
- `origin_http_busy_connections`: connections in progress ("BusyServers");
- `origin_up`: 1 when lighttpd answered the status request.
"""

from __future__ import annotations

import argparse
import json
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from testbed.p2p.origin import STATUS_PATH


def parse_status(text: str) -> dict[str, float]:
    """lighttpd's `?auto` page, `Key: value` per line, as numbers."""
    values: dict[str, float] = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        try:
            values[key.strip()] = float(value.strip())
        except ValueError:
            continue
    return values


class OriginCollector(Collector):
    def __init__(self, url: str) -> None:
        self.url = url

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        try:
            with urllib.request.urlopen(self.url, timeout=2) as reply:  # noqa: S310
                status = parse_status(reply.read().decode(errors="replace"))
        except OSError:
            status = {}
        yield GaugeMetricFamily("origin_up", "1 when lighttpd answered its status page",
                                value=1 if status else 0)
        if not status:
            return
        yield CounterMetricFamily("origin_http_sent_bytes", "bytes lighttpd sent",
                                  value=status.get("Total kBytes", 0) * 1024)
        yield CounterMetricFamily("origin_http_requests", "requests lighttpd answered",
                                  value=status.get("Total Accesses", 0))
        yield GaugeMetricFamily("origin_http_busy_connections", "connections in progress",
                                value=status.get("BusyServers", 0))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config", required=True)
    args = parser.parse_args(argv)
    config = json.loads(Path(args.config).read_text())
    registry = CollectorRegistry()
    registry.register(OriginCollector(
        f"http://127.0.0.1:{config['port']}{STATUS_PATH}?auto"))
    start_http_server(config["metrics_port"], addr=config["mgmt_address"], registry=registry)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
