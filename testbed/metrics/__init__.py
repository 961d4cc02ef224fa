"""Metrics: the testbed exporter, the lab's Prometheus server, results, reports."""
