"""The response cache's store contract on every backend: in memory, SQL and Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from roost.llm.cache import CacheStore, DatabaseCacheStore, MemoryCacheStore, RedisCacheStore
from roost.llm.schema import LLM_MIGRATIONS
from roost.storage import Database, migrate
from roost.storage.redis import connect_redis


@pytest.fixture(
    params=[
        "memory",
        "sqlite",
        pytest.param("postgresql", marks=pytest.mark.postgres),
        pytest.param("redis", marks=pytest.mark.redis),
    ]
)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[CacheStore]:
    if request.param == "memory":
        yield MemoryCacheStore()
    elif request.param == "redis":
        redis = await connect_redis(request.getfixturevalue("redis_url"))
        yield RedisCacheStore(redis)
        await redis.aclose()
    else:
        url = (
            f"sqlite:///{tmp_path / 'cache.db'}"
            if request.param == "sqlite"
            else request.getfixturevalue("postgres_url")
        )
        db = await Database.connect(url)
        await migrate(db, LLM_MIGRATIONS)
        yield DatabaseCacheStore(db)
        await db.close()


async def test_store_round_trip_and_nearest_neighbour(store: CacheStore) -> None:
    assert await store.get("k1") is None
    await store.put("k1", "v1", 60, tenant_id="t")
    assert await store.get("k1") == "v1"
    await store.put("k2", "v2", 60, tenant_id="t", partition="p", vector=[1.0, 0.0])
    await store.put("k3", "v3", 60, tenant_id="t", partition="p", vector=[0.6, 0.8])
    await store.put("k4", "v4", 60, tenant_id="t", partition="other", vector=[0.0, 1.0])
    near = await store.nearest("p", [0.0, 1.0])
    assert near is not None
    assert (near.key, near.value) == ("k3", "v3")
    assert near.similarity == pytest.approx(0.8)
    assert await store.nearest("empty", [1.0, 0.0]) is None
