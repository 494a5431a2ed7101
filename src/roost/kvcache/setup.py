"""Open the tiered :class:`AgentCacheStore` for an engine: pass :func:`open_session_store`
as the engine's ``session_store`` (it is a ``roost.engine.session_cache.SessionStoreFactory``)."""

from __future__ import annotations

from roost.engine.session_cache import SessionCacheHost
from roost.kvcache.cold_store import ColdStore
from roost.kvcache.metrics import SessionCacheMetrics
from roost.kvcache.store import AgentCacheStore, Budgets

_GB = 2**30


def open_session_store(host: SessionCacheHost) -> AgentCacheStore:
    """The store for the host engine's model: caches of other models live in sibling
    directories."""
    config = host.config
    cold = ColdStore(
        (config.session_dir or config.home / "kv") / host.model_digest,
        model_digest=host.model_digest,
        tokenizer_digest=host.tokenizer_digest,
    )
    budgets = Budgets(
        hot_blocks=int(host.pool.num_blocks * config.session_hot_fraction),
        warm_bytes=host.warm_bytes,
        cold_bytes=int(config.session_cold_gb * _GB),
    )
    return AgentCacheStore(
        host.pool,
        host.kv_cache,
        cold,
        budgets=budgets,
        scheme=config.session_quantization,
        metrics=SessionCacheMetrics(host.metrics_registry),
    )
