"""Short-term memory: one contract for the in-process, SQL (SQLite/PostgreSQL) and Redis stores."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from roost.errors import InvalidRequest
from roost.memory.schema import MEMORY_MIGRATIONS
from roost.memory.short_term import InProcessShortTermStore, ShortTermMemory, ShortTermStore, Turn
from roost.memory.short_term_stores import RedisShortTermStore, SqlShortTermStore
from roost.storage import Database, migrate
from roost.storage.redis import connect_redis


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(
    params=[
        "inprocess",
        "sqlite",
        pytest.param("postgres", marks=pytest.mark.postgres),
        pytest.param("redis", marks=pytest.mark.redis),
    ]
)
async def stm_store(
    request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock
) -> AsyncIterator[ShortTermStore]:
    if request.param == "inprocess":
        yield InProcessShortTermStore(clock)
    elif request.param == "redis":
        redis = await connect_redis(request.getfixturevalue("redis_url"))
        try:
            yield RedisShortTermStore(redis)
        finally:
            await redis.aclose()
    else:
        url = (
            f"sqlite:///{tmp_path / 'roost.db'}"
            if request.param == "sqlite"
            else request.getfixturevalue("postgres_url")
        )
        database = await Database.connect(url)
        await migrate(database, MEMORY_MIGRATIONS)
        try:
            yield SqlShortTermStore(database, clock)
        finally:
            await database.close()


def words(n: int) -> str:
    return " ".join(f"w{i}" for i in range(n))


def count_words(text: str) -> int:
    return len(text.split())


def memory(store: ShortTermStore, clock: FakeClock, max_tokens: int = 20) -> ShortTermMemory:
    return ShortTermMemory(
        store,
        max_tokens=max_tokens,
        count_tokens=count_words,
        overhead_tokens=0,
        ttl_s=60,
        clock=clock,
    )


async def test_turns_keep_order_content_and_pins(
    stm_store: ShortTermStore, clock: FakeClock
) -> None:
    stm = memory(stm_store, clock)
    system = await stm.add("t1", "th", "system", "be brief")
    user = await stm.add("t1", "th", "user", "hello there", metadata={"message_id": "m1"})
    turns = await stm.turns("t1", "th")
    assert [t.id for t in turns] == [system.id, user.id]
    assert [t.seq for t in turns] == [1, 2]
    assert turns[0].pinned and not turns[1].pinned
    assert turns[1].tokens == 2 and turns[1].metadata == {"message_id": "m1"}
    assert await stm.turns("t2", "th") == []  # another tenant sees nothing


async def test_window_holds_budget_and_never_drops_pinned(
    stm_store: ShortTermStore, clock: FakeClock
) -> None:
    stm = memory(stm_store, clock, max_tokens=20)
    await stm.add("t1", "th", "system", words(5))
    for _ in range(6):
        await stm.add("t1", "th", "user", words(4))
    window = await stm.window("t1", "th")
    assert window[0].role == "system"
    assert sum(t.tokens for t in window) <= 20
    assert [t.seq for t in window] == [1, 5, 6, 7]  # the newest three that fit, no gaps
    stored = await stm.turns("t1", "th")
    overflow = stm.overflow(stored)
    assert [t.seq for t in overflow] == [2, 3, 4]  # oldest unpinned first
    assert await stm.evict("t1", "th", [stored[0].id, *(t.id for t in overflow)]) == 3
    remaining = await stm.turns("t1", "th")
    assert [t.seq for t in remaining] == [1, 5, 6, 7]
    assert await stm.total_tokens("t1", "th") == 17


async def test_remove_is_idempotent(stm_store: ShortTermStore, clock: FakeClock) -> None:
    stm = memory(stm_store, clock)
    turn = await stm.add("t1", "th", "user", "x")
    assert await stm_store.remove("t1", "th", [turn.id]) == 1
    assert await stm_store.remove("t1", "th", [turn.id]) == 0


async def test_threads_are_listed_per_tenant_and_cleared(
    stm_store: ShortTermStore, clock: FakeClock
) -> None:
    stm = memory(stm_store, clock)
    await stm.add("t1", "a", "user", "x")
    await stm.add("t1", "b", "user", "y")
    await stm.add("t2", "c", "user", "z")
    assert await stm_store.threads("t1") == ["a", "b"]
    await stm.clear("t1", "a")
    assert await stm_store.threads("t1") == ["b"]
    assert await stm.turns("t1", "a") == []


async def test_unknown_role_is_rejected(stm_store: ShortTermStore, clock: FakeClock) -> None:
    with pytest.raises(InvalidRequest):
        await memory(stm_store, clock).add("t1", "th", "narrator", "x")


@pytest.mark.parametrize("kind", ["inprocess", "sqlite"])
async def test_threads_expire_after_ttl(kind: str, tmp_path: Path, clock: FakeClock) -> None:
    database = None
    if kind == "sqlite":
        database = await Database.connect(f"sqlite:///{tmp_path / 'r.db'}")
        await migrate(database, MEMORY_MIGRATIONS)
        store: ShortTermStore = SqlShortTermStore(database, clock)
    else:
        store = InProcessShortTermStore(clock)
    stm = memory(store, clock)
    await stm.add("t1", "th", "user", "old")
    clock.now += 59
    await stm.add("t1", "th", "user", "refreshes the ttl")
    clock.now += 59
    assert len(await stm.turns("t1", "th")) == 2
    clock.now += 2
    assert await stm.turns("t1", "th") == []
    assert await store.threads("t1") == []
    fresh = await stm.add("t1", "th", "user", "new life")
    assert fresh.seq == 1 and [t.content for t in await stm.turns("t1", "th")] == ["new life"]
    if isinstance(store, SqlShortTermStore):
        clock.now += 61
        assert await store.purge_expired() == 1
    if database is not None:
        await database.close()


async def test_redis_threads_carry_a_native_ttl(redis_url: str) -> None:
    redis = await connect_redis(redis_url)
    try:
        store = RedisShortTermStore(redis)
        stm = ShortTermMemory(store, ttl_s=30)
        await stm.add("t1", "th", "user", "x")
        ttl_ms = await redis.client.pttl("roost:stm:t1:th:turns")
        assert 0 < ttl_ms <= 30_000
        await redis.client.delete("roost:stm:t1:th:turns", "roost:stm:t1:th:seq")  # as expiry does
        assert await store.threads("t1") == []
    finally:
        await redis.aclose()


def test_turn_json_round_trip() -> None:
    turn = Turn("id", "user", "hi", 3, False, 7, 123, {"a": 1})
    assert Turn.from_json(turn.to_json()) == turn
