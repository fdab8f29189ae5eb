"""Prometheus metrics of the server (text format at ``GET /metrics``), one registry per app."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST as CONTENT_TYPE
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

__all__ = ["Metrics", "CONTENT_TYPE"]


class Metrics:
    """Request, clip, refusal and latency counters. Labels carry model names and statuses, never keys."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "vidattack_infer_requests", "Inference requests by model and HTTP status", ["model", "status"],
            registry=self.registry,
        )
        self.clips = Counter("vidattack_infer_clips", "Clips classified by model", ["model"], registry=self.registry)
        self.seconds = Histogram(
            "vidattack_infer_seconds", "Model time per inference request", ["model"], registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )
        self.in_flight = Gauge("vidattack_infer_in_flight", "Inference requests being run", registry=self.registry)
        self.errors = Counter(
            "vidattack_http_errors", "Refused requests by HTTP status", ["status"], registry=self.registry
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
