"""Per-session KV caches: quantized K/V tensors, their files on disk, and the tiered store
an engine is given as its ``session_store`` (:func:`open_session_store`)."""

from roost.engine.session_cache import CacheIdentity
from roost.kvcache.cold_store import (
    CacheRejected,
    ColdEntry,
    ColdFileInfo,
    ColdStore,
)
from roost.kvcache.quantize import QuantizedKV, Scheme, dequantize, from_parts, quantize
from roost.kvcache.setup import open_session_store
from roost.kvcache.store import AgentCacheStore

__all__ = [
    "AgentCacheStore",
    "CacheIdentity",
    "CacheRejected",
    "ColdEntry",
    "ColdFileInfo",
    "ColdStore",
    "QuantizedKV",
    "Scheme",
    "dequantize",
    "from_parts",
    "open_session_store",
    "quantize",
]
