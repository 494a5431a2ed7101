"""Prometheus metrics of the served local model: which one is loaded, how long swaps take."""

from __future__ import annotations

from typing import Any

from prometheus_client import Gauge, Histogram

from roost.observe.metrics import REGISTRY, exclude_registry, include_registry

MODEL_LOADED = Gauge(
    "roost_engine_model_loaded",
    "1 for the local model being served, by name and weights digest",
    ["model", "digest"],
    registry=REGISTRY,
)
MODEL_SWAP_DURATION = Histogram(
    "roost_engine_model_swap_seconds",
    "Model swaps from request to ready (or to failure), by outcome",
    ["outcome"],
    buckets=(0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600),
    registry=REGISTRY,
)


def mark_loaded(engine: Any) -> None:
    """Serve ``engine``'s own metrics at /metrics and flag it as the loaded model."""
    include_registry(engine.metrics.registry)
    MODEL_LOADED.labels(engine.model_name, engine.model_digest).set(1)


def mark_unloaded(engine: Any) -> None:
    """Drop ``engine``'s series: another model with the same metric names replaces it."""
    exclude_registry(engine.metrics.registry)
    MODEL_LOADED.remove(engine.model_name, engine.model_digest)
