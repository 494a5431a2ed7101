"""Response cache: exact and semantic tiers over in-memory, database or Redis stores."""

from roost.llm.cache.response_cache import CacheHit, CacheStats, ResponseCache, TextEmbedder
from roost.llm.cache.stores import CacheStore, DatabaseCacheStore, MemoryCacheStore, RedisCacheStore

__all__ = [
    "CacheHit",
    "CacheStats",
    "CacheStore",
    "DatabaseCacheStore",
    "MemoryCacheStore",
    "RedisCacheStore",
    "ResponseCache",
    "TextEmbedder",
]
