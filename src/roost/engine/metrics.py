"""Prometheus metrics of one engine, on its own registry so a server can mount it."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class EngineMetrics:
    """Gauges for queue and KV state, counters for tokens, histograms for latency."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.num_running = Gauge(
            "roost_engine_running_sequences", "Sequences holding KV blocks", registry=r
        )
        self.num_waiting = Gauge(
            "roost_engine_waiting_sequences", "Sequences queued for admission", registry=r
        )
        self.kv_blocks_used = Gauge(
            "roost_engine_kv_blocks_used", "KV blocks referenced by sequences", registry=r
        )
        self.kv_blocks_free = Gauge(
            "roost_engine_kv_blocks_free", "KV blocks free or evictable", registry=r
        )
        self.prefix_cache_hit_rate = Gauge(
            "roost_engine_prefix_cache_hit_rate",
            "Share of prompt tokens served from the prefix cache",
            registry=r,
        )
        self.decode_tokens_per_s = Gauge(
            "roost_engine_decode_tokens_per_second",
            "Generated tokens per second (recent steps)",
            registry=r,
        )
        self.prompt_tokens = Counter(
            "roost_engine_prompt_tokens", "Prompt tokens received", registry=r
        )
        self.cached_prompt_tokens = Counter(
            "roost_engine_cached_prompt_tokens",
            "Prompt tokens served by the prefix cache",
            registry=r,
        )
        self.generation_tokens = Counter(
            "roost_engine_generation_tokens", "Tokens generated", registry=r
        )
        self.preemptions = Counter(
            "roost_engine_preemptions", "Sequences preempted for KV space", registry=r
        )
        self.requests_finished = Counter(
            "roost_engine_requests_finished", "Finished requests", ["reason"], registry=r
        )
        self.time_to_first_token = Histogram(
            "roost_engine_time_to_first_token_seconds",
            "Arrival to first token",
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=r,
        )
        self._total_prompt = 0
        self._total_cached = 0
        self._recent_rate = 0.0

    def record_admission(self, prompt_tokens: int, cached_tokens: int) -> None:
        self.prompt_tokens.inc(prompt_tokens)
        self.cached_prompt_tokens.inc(cached_tokens)
        self._total_prompt += prompt_tokens
        self._total_cached += cached_tokens
        self.prefix_cache_hit_rate.set(self._total_cached / max(1, self._total_prompt))

    def record_step(self, num_generated: int, seconds: float) -> None:
        if num_generated:
            self.generation_tokens.inc(num_generated)
        if seconds > 0 and num_generated:
            # Exponential moving average keeps the gauge steady between scrapes.
            self._recent_rate = 0.8 * self._recent_rate + 0.2 * (num_generated / seconds)
            self.decode_tokens_per_s.set(self._recent_rate)
