"""Prometheus metrics of the service: requests, latency, bundle version and reloads."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from recsys.serving.state import Served

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class ServiceMetrics:
    """One registry per app (tests build several apps in one process)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("recsys_http_requests", "HTTP requests by endpoint and status",
                                ["endpoint", "method", "status"], registry=self.registry)
        self.latency = Histogram("recsys_http_request_seconds", "Request latency by endpoint",
                                 ["endpoint"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.bundle = Gauge("recsys_bundle_info", "The bundle served (1 for the current one)",
                            ["version", "path", "format_version"], registry=self.registry)
        self.loaded_at = Gauge("recsys_bundle_loaded_timestamp_seconds",
                               "When the current bundle was swapped in", registry=self.registry)
        self.reloads = Counter("recsys_bundle_reloads", "Bundle reloads by outcome",
                               ["outcome"], registry=self.registry)

    def observe(self, endpoint: str, method: str, status: int, seconds: float) -> None:
        self.requests.labels(endpoint, method, str(status)).inc()
        self.latency.labels(endpoint).observe(seconds)

    def bundle_changed(self, served: Served) -> None:
        self.bundle.clear()
        self.bundle.labels(served.version, str(served.resolved),
                           str(served.manifest.get("format_version"))).set(1)
        self.loaded_at.set(time.time())

    def render(self) -> bytes:
        return generate_latest(self.registry)
