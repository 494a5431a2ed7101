"""Prometheus metrics: one registry for the process, served at ``/metrics``.

Layers define their metrics on :data:`REGISTRY` at import time; names start with
``roost_``. A layer that must stay importable on its own may keep its own registry and
hand it to :func:`include_registry` so that ``/metrics`` serves it too.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

REGISTRY = CollectorRegistry(auto_describe=True)
_EXTRA_REGISTRIES: list[CollectorRegistry] = []

HTTP_REQUESTS = Counter(
    "roost_http_requests",
    "HTTP requests handled, by method, route template and status code",
    ["method", "route", "status"],
    registry=REGISTRY,
)
HTTP_DURATION = Histogram(
    "roost_http_request_duration_seconds",
    "Time from request start to response start, by method and route template",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
    registry=REGISTRY,
)
HTTP_IN_FLIGHT = Gauge(
    "roost_http_requests_in_flight", "Requests being handled right now", registry=REGISTRY
)
AUTH_FAILURES = Counter(
    "roost_auth_failures", "Requests refused for missing or bad credentials", registry=REGISTRY
)


def include_registry(registry: CollectorRegistry) -> None:
    """Serve ``registry``'s metrics at /metrics as well (idempotent)."""
    if registry is not REGISTRY and registry not in _EXTRA_REGISTRIES:
        _EXTRA_REGISTRIES.append(registry)


def exclude_registry(registry: CollectorRegistry) -> None:
    """Stop serving ``registry`` (an unloaded model's engine metrics)."""
    if registry in _EXTRA_REGISTRIES:
        _EXTRA_REGISTRIES.remove(registry)


def render_latest() -> bytes:
    """The text exposition of every included registry."""
    return b"".join(generate_latest(reg) for reg in (REGISTRY, *_EXTRA_REGISTRIES))
