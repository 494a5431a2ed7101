"""Per-session KV caches: quantized K/V tensors and their files on disk."""

from roost.kvcache.cold_store import (
    CacheIdentity,
    CacheRejected,
    ColdEntry,
    ColdFileInfo,
    ColdStore,
)
from roost.kvcache.quantize import QuantizedKV, Scheme, dequantize, from_parts, quantize

__all__ = [
    "CacheIdentity",
    "CacheRejected",
    "ColdEntry",
    "ColdFileInfo",
    "ColdStore",
    "QuantizedKV",
    "Scheme",
    "dequantize",
    "from_parts",
    "quantize",
]
