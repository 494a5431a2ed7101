"""The limit store contract on every backend: SQLite, PostgreSQL and Redis.

Two store objects on one backend stand for two server processes: they must enforce one
limit between them, all-or-nothing across buckets, and leases must count across both.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from roost.limits.buckets import Bucket, Lease, Mode
from roost.limits.postgres_store import PostgresLimitStore
from roost.limits.redis_store import RedisLimitStore
from roost.limits.schema import LIMIT_MIGRATIONS
from roost.limits.sqlite_store import SqliteLimitStore
from roost.limits.store import LimitStore
from roost.storage import Database, migrate
from roost.storage.redis import connect_redis


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param("postgresql", marks=pytest.mark.postgres),
        pytest.param("redis", marks=pytest.mark.redis),
    ]
)
async def stores(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[LimitStore, LimitStore]]:
    """Two stores on one backend, as two processes would open them."""
    if request.param == "redis":
        url = request.getfixturevalue("redis_url")
        one, two = await connect_redis(url), await connect_redis(url)
        yield RedisLimitStore(one), RedisLimitStore(two)
        await one.aclose()
        await two.aclose()
        return
    url = (
        f"sqlite:///{tmp_path / 'limits.db'}"
        if request.param == "sqlite"
        else request.getfixturevalue("postgres_url")
    )
    db = await Database.connect(url)
    await migrate(db, LIMIT_MIGRATIONS)
    if request.param == "sqlite":
        pair: tuple[LimitStore, LimitStore] = (
            SqliteLimitStore(tmp_path / "limits.db"),
            SqliteLimitStore(tmp_path / "limits.db"),
        )
    else:
        other = await Database.connect(url)
        pair = (PostgresLimitStore(db), PostgresLimitStore(other))
    yield pair
    for store in pair:
        await store.close()
    if request.param == "postgresql":
        await pair[1].database.close()  # type: ignore[attr-defined]
    await db.close()


def rpm(capacity: float, cost: float = 1.0, key: str = "rpm:key:k1") -> Bucket:
    return Bucket(key, capacity, 60.0, cost, f"{key} ({capacity:g}/min)")


async def test_a_bucket_admits_its_capacity_then_refuses_naming_itself(stores) -> None:
    one, _ = stores
    results = [await one.acquire([rpm(3)]) for _ in range(4)]
    assert [r.allowed for r in results] == [True, True, True, False]
    refused = results[-1]
    assert refused.limit == "rpm:key:k1 (3/min)"
    # One token refills in 60 s / 3 = 20 s (a little less has passed since).
    assert refused.retry_after_s is not None and 19 < refused.retry_after_s <= 20


async def test_two_processes_share_one_bucket_exactly(stores) -> None:
    one, two = stores
    outcomes = await asyncio.gather(
        *(store.acquire([rpm(20)]) for _ in range(25) for store in (one, two))
    )
    assert sum(v.allowed for v in outcomes) == 20


async def test_a_refusal_debits_no_other_bucket(stores) -> None:
    one, _ = stores
    tenant, key = rpm(10, key="rpm:tenant:t"), rpm(1, key="rpm:key:k")
    assert (await one.acquire([key, tenant])).allowed
    refused = await one.acquire([key, tenant])
    assert not refused.allowed and refused.limit == key.name
    # The tenant bucket paid for the first request only: 9 of 10 remain.
    nine = [await one.acquire([tenant]) for _ in range(10)]
    assert [v.allowed for v in nine].count(True) == 9


async def test_check_mode_answers_without_debiting(stores) -> None:
    one, _ = stores
    for _ in range(5):
        assert (await one.acquire([rpm(1)], mode=Mode.CHECK)).allowed
    assert (await one.acquire([rpm(1)])).allowed
    assert not (await one.acquire([rpm(1)], mode=Mode.CHECK)).allowed


async def test_a_bucket_without_debit_is_checked_but_not_spent(stores) -> None:
    one, _ = stores
    lockout = Bucket("authfail:key:k", 1, 300.0, 1.0, "failed attempts", debit=False)
    for _ in range(3):
        assert (await one.acquire([lockout, rpm(10)])).allowed
    await one.acquire([Bucket("authfail:key:k", 1, 300.0, 1.0, "failed attempts")], mode=Mode.FORCE)
    refused = await one.acquire([lockout, rpm(10)])
    assert not refused.allowed and refused.limit == "failed attempts"


async def test_force_runs_into_debt_and_a_negative_cost_refunds(stores) -> None:
    one, _ = stores
    tokens = rpm(100, cost=250, key="tpm:key:k")
    assert (await one.acquire([tokens], mode=Mode.FORCE)).allowed  # level -150
    assert not (await one.acquire([rpm(100, cost=1, key="tpm:key:k")])).allowed
    await one.acquire([rpm(100, cost=-200, key="tpm:key:k")], mode=Mode.FORCE)  # back to ~50
    assert (await one.acquire([rpm(100, cost=40, key="tpm:key:k")])).allowed
    assert not (await one.acquire([rpm(100, cost=40, key="tpm:key:k")])).allowed


async def test_leases_count_across_processes_until_released(stores) -> None:
    one, two = stores

    def lease(n: int) -> Lease:
        return Lease("conc:tenant:t", 2, f"lease-{n}", 60.0, "concurrency of tenant t (2)")

    assert (await one.acquire([], [lease(1)])).allowed
    assert (await two.acquire([], [lease(2)])).allowed
    refused = await one.acquire([rpm(5)], [lease(3)])
    assert not refused.allowed and refused.limit == "concurrency of tenant t (2)"
    assert (await one.acquire([rpm(5)], mode=Mode.CHECK)).allowed  # rpm was not spent
    await two.release([("conc:tenant:t", "lease-1"), ("conc:tenant:t", "gone")])
    assert (await two.acquire([], [lease(4)])).allowed


async def test_an_expired_lease_frees_its_slot(stores) -> None:
    one, _ = stores
    short = Lease("conc:key:k", 1, "crashed", 0.001, "concurrency")
    assert (await one.acquire([], [short])).allowed
    await asyncio.sleep(0.02)  # the lease's owner "crashed": only time frees it
    assert (await one.acquire([], [Lease("conc:key:k", 1, "next", 60.0, "concurrency")])).allowed


async def test_reset_forgets_one_prefix_only(stores) -> None:
    one, _ = stores
    await one.acquire([rpm(1, key="rpm:key:t1/a"), rpm(1, key="rpm:key:t2/a")])
    assert await one.reset("rpm:key:t1/") >= 1
    assert (await one.acquire([rpm(1, key="rpm:key:t1/a")])).allowed
    assert not (await one.acquire([rpm(1, key="rpm:key:t2/a")])).allowed


async def test_finish_settles_tokens_and_frees_slots_in_one_call(stores) -> None:
    one, two = stores
    slot = Lease("conc:key:k", 1, "held", 60.0, "concurrency of key k (1)")
    tokens = rpm(100, cost=90, key="tpm:key:k")
    assert (await one.acquire([tokens], [slot])).allowed  # 10 tokens left, the slot taken
    assert not (await two.acquire([], [Lease("conc:key:k", 1, "b", 60.0, "c")])).allowed
    # The call used 30 of its 90: refund 60, and give the slot back, in one call.
    await two.finish([rpm(100, cost=-60, key="tpm:key:k")], [("conc:key:k", "held")])
    assert (await one.acquire([rpm(100, cost=65, key="tpm:key:k")], [slot])).allowed
    assert not (await one.acquire([rpm(100, cost=10, key="tpm:key:k")])).allowed
