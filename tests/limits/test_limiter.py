"""The limiter's own rules: how limits resolve, and failing closed when the store is down."""

from __future__ import annotations

from pathlib import Path

import pytest
from redis.asyncio import Redis

from roost.config import LimitOverride, LimitValues, load_settings
from roost.errors import Overloaded, RateLimited
from roost.limits.overrides import LimitOverrideStore
from roost.limits.policy import resolve
from roost.limits.redis_store import RedisLimitStore
from roost.limits.schema import LIMIT_MIGRATIONS
from roost.limits.service import Limiter, current_admission
from roost.storage import Database, migrate
from roost.storage.redis import RedisClient
from tests.support.servers import free_port


def test_overrides_layer_over_defaults_and_zero_means_no_limit(tmp_path: Path) -> None:
    settings = load_settings(
        env={
            "ROOST_HOME": str(tmp_path),
            "ROOST_LIMITS__TENANTS": '{"acme": {"tenant": {"concurrency": 5}}}',
        }
    ).limits
    runtime = LimitOverride(
        tenant=LimitValues(requests_per_minute=7), key=LimitValues(tokens_per_minute=0)
    )
    policy = resolve(settings, "acme", runtime)
    assert policy.tenant.concurrency == 5  # roost.toml's entry for acme
    assert policy.tenant.requests_per_minute == 7  # the run-time override
    assert policy.tenant.tokens_per_minute == settings.tenant.tokens_per_minute  # default
    assert policy.key.tokens_per_minute == 0  # no limit
    other = resolve(settings, "other")
    assert other.tenant.concurrency == settings.tenant.concurrency


async def _limiter_on_dead_redis(tmp_path: Path) -> Limiter:
    settings = load_settings(env={"ROOST_HOME": str(tmp_path)})
    database = await Database.connect(f"sqlite:///{tmp_path / 'roost.db'}")
    await migrate(database, LIMIT_MIGRATIONS)
    # Nothing listens there: every call to the store fails as a Redis outage would.
    dead = RedisClient(Redis.from_url(f"redis://127.0.0.1:{free_port()}/0"), "redis://dead")
    return Limiter(settings, RedisLimitStore(dead), LimitOverrideStore(database))


async def test_a_store_that_is_down_refuses_with_503_never_unlimited(tmp_path: Path) -> None:
    limiter = await _limiter_on_dead_redis(tmp_path)
    with pytest.raises(Overloaded, match="limits cannot be checked"):
        await limiter.admit("default", "k1", concurrent=True)
    with pytest.raises(Overloaded):
        await limiter.take_tokens("default", "k1", 100)
    # A failed login attempt is refused anyway; recording it must not turn 401 into 500.
    await limiter.record_login_failure("roost-abcdefabcdef-secret", "10.0.0.1")
    await limiter.overrides.database.close()


async def test_tokens_per_minute_refuse_then_refund(tmp_path: Path) -> None:
    settings = load_settings(
        env={"ROOST_HOME": str(tmp_path), "ROOST_LIMITS__KEY__TOKENS_PER_MINUTE": "1000"}
    )
    database = await Database.connect(settings.database_url)
    limiter = await Limiter.open(settings, database, None)
    try:
        await limiter.take_tokens("t", "k", 900)
        with pytest.raises(RateLimited, match="tokens_per_minute of API key k"):
            await limiter.take_tokens("t", "k", 200)
        await limiter.settle_tokens("t", "k", -800)  # the call used 100 of its 900
        await limiter.take_tokens("t", "k", 800)
    finally:
        await limiter.close()
        await database.close()


async def test_a_refund_inside_a_request_rides_with_its_release(tmp_path: Path) -> None:
    settings = load_settings(
        env={
            "ROOST_HOME": str(tmp_path),
            "ROOST_LIMITS__KEY__TOKENS_PER_MINUTE": "1000",
            "ROOST_LIMITS__KEY__CONCURRENCY": "1",
        }
    )
    database = await Database.connect(settings.database_url)
    limiter = await Limiter.open(settings, database, None)
    try:
        admission = await limiter.admit("t", "k", concurrent=True)
        token = current_admission.set(admission)
        await limiter.take_tokens("t", "k", 900)
        await limiter.settle_tokens("t", "k", -800)  # deferred: not in the store yet
        current_admission.reset(token)
        with pytest.raises(RateLimited, match="tokens_per_minute"):
            await limiter.take_tokens("t", "k", 800)
        with pytest.raises(RateLimited, match="concurrency of API key k"):
            await limiter.admit("t", "k", concurrent=True)
        await admission.release()  # the slot and the refund, in one store call
        await limiter.take_tokens("t", "k", 800)
        second = await limiter.admit("t", "k", concurrent=True)
        await second.release()
        # After the release, a late correction goes straight to the store.
        await limiter.settle_tokens("t", "k", -800)
        assert not admission.defer([])
    finally:
        await limiter.close()
        await database.close()
