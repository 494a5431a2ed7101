"""Prometheus metrics of the per-session KV caches, registered on the engine's registry."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_IO_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10)


class SessionCacheMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        r = registry
        self.lookups = Counter(
            "roost_kv_session_lookups",
            "Requests with a session, by the tier that held its cache (miss: none)",
            ["tier"],
            registry=r,
        )
        self.prompt_tokens = Counter(
            "roost_kv_session_prompt_tokens",
            "Prompt tokens of session requests: reused from a cache or prefilled",
            ["source"],
            registry=r,
        )
        self.tokens_restored = Counter(
            "roost_kv_session_tokens_restored",
            "Tokens whose K/V were written back into the pool from warm or cold caches",
            registry=r,
        )
        self.bytes = Gauge(
            "roost_kv_session_bytes", "Bytes held by session caches, per tier", ["tier"], registry=r
        )
        self.rejected = Counter(
            "roost_kv_session_rejected",
            "Cache files refused on load (other model or tokenizer, corrupt)",
            ["reason"],
            registry=r,
        )
        self.load_seconds = Histogram(
            "roost_kv_session_load_seconds",
            "Time to read a session cache from disk",
            buckets=_IO_BUCKETS,
            registry=r,
        )
        self.save_seconds = Histogram(
            "roost_kv_session_save_seconds",
            "Time to write a session cache to disk",
            buckets=_IO_BUCKETS,
            registry=r,
        )
