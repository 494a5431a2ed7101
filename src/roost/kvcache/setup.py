"""Build an engine's :class:`AgentCacheStore` from its configuration."""

from __future__ import annotations

from typing import TYPE_CHECKING

from roost.kvcache.cold_store import ColdStore
from roost.kvcache.metrics import SessionCacheMetrics
from roost.kvcache.store import AgentCacheStore, Budgets

if TYPE_CHECKING:
    from roost.engine.engine import Engine

_GB = 2**30


def open_session_store(engine: Engine) -> AgentCacheStore:
    """The store for ``engine``'s model: caches of other models live in sibling directories."""
    config = engine.config
    cold = ColdStore(
        (config.session_dir or config.home / "kv") / engine.model_digest,
        model_digest=engine.model_digest,
        tokenizer_digest=engine.tokenizer_digest,
    )
    budgets = Budgets(
        hot_blocks=int(engine.pool.num_blocks * config.session_hot_fraction),
        warm_bytes=int(config.session_warm_gb * _GB),
        cold_bytes=int(config.session_cold_gb * _GB),
    )
    return AgentCacheStore(
        engine.pool,
        engine.runner.kv_cache,
        cold,
        budgets=budgets,
        scheme=config.session_quantization,
        metrics=SessionCacheMetrics(engine.metrics.registry),
    )
