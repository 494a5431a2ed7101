"""Verified API keys kept in memory: served without a database read, and dropped the
moment any process changes a key or tenant (SQLite: a change counter bumped by triggers;
PostgreSQL: LISTEN/NOTIFY). Two platforms on one database stand for two processes: each
has its own connections, cache and change feed."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from roost.config import load_settings
from roost.errors import Unauthorized
from roost.platform import Platform
from roost.security.api_keys import ApiKey
from roost.security.auth_changes import (
    APPLICATION_NAME,
    PostgresAuthChanges,
    SqliteAuthChanges,
)
from roost.security.key_cache import VerifiedCache
from roost.security.principal import Role
from roost.storage import Database, now_ms

# Revocation on PostgreSQL reaches another process as fast as its NOTIFY: allow for a
# loaded machine, far below the TTL the platforms run with here (300 s), so only the
# signal can explain a refusal within it.
PG_BOUND_S = 2.0
Opener = Callable[..., Any]


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'roost.db'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
async def open_platform(database_url: str, tmp_path: Path) -> AsyncIterator[Opener]:
    opened: list[Platform] = []

    async def opener(ttl_s: float = 300.0) -> Platform:
        home = tmp_path / f"home-{len(opened)}"
        settings = load_settings(env={"ROOST_HOME": str(home), "ROOST_DATABASE_URL": database_url,
                                      "ROOST_AUTH__KEY_CACHE_TTL_S": str(ttl_s)})  # fmt: skip
        platform = await Platform.open(settings)
        opened.append(platform)
        feed = platform.auth_changes
        if isinstance(feed, PostgresAuthChanges):
            await asyncio.wait_for(feed.connected.wait(), 30)
        return platform

    try:
        yield opener
    finally:
        for platform in opened:
            await platform.close()


@contextmanager
def statements(database: Database) -> Iterator[list[str]]:
    """The SQL statements ``database``'s engine runs inside the block."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(statement)

    engine = database.engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


async def refused_within(platform: Platform, key: str, bound_s: float) -> float:
    """Seconds until ``platform`` refuses ``key``; fails past ``bound_s``."""
    started = time.monotonic()
    while True:
        try:
            await platform.api_keys.verify(key)
        except Unauthorized:
            return time.monotonic() - started
        assert time.monotonic() - started < bound_s, f"still accepted after {bound_s} s"
        await asyncio.sleep(0.005)  # let the listener's notification in


def bound_of(platform: Platform) -> float:
    # SQLite: the counter is read on every request, so the very next one is refused.
    return PG_BOUND_S if isinstance(platform.auth_changes, PostgresAuthChanges) else 0.0


async def new_key(platform: Platform, role: Role = Role.MEMBER) -> tuple[ApiKey, str]:
    tenant = await platform.tenants.create(f"t{time.time_ns()}")
    return await platform.api_keys.create(tenant.id, "k", role=role)


async def test_a_verified_key_is_served_without_a_database_read(open_platform: Opener) -> None:
    platform = await open_platform()
    key, secret = await new_key(platform)
    assert (await platform.api_keys.verify(secret)).id == key.id
    with statements(platform.database) as seen:
        for _ in range(5):
            found = await platform.api_keys.verify(secret)
            assert found.id == key.id and found.role is Role.MEMBER
    assert seen == []


async def test_failures_are_never_cached(open_platform: Opener) -> None:
    platform = await open_platform()
    _, secret = await new_key(platform)
    wrong = secret[:-4] + ("aaaa" if not secret.endswith("aaaa") else "bbbb")
    with statements(platform.database) as seen:
        for _ in range(3):
            with pytest.raises(Unauthorized):
                await platform.api_keys.verify(wrong)
    assert len([s for s in seen if "FROM api_keys" in s]) == 3


async def test_changes_in_another_process_end_the_cached_key(open_platform: Opener) -> None:
    server, admin = await open_platform(), await open_platform()
    bound = bound_of(server)
    key, secret = await new_key(admin)
    assert (await server.api_keys.verify(secret)).role is Role.MEMBER

    # A role change: the next verification on the other process sees the new role.
    await admin.api_keys.set_role(key.id, Role.VIEWER)
    started = time.monotonic()
    while (await server.api_keys.verify(secret)).role is not Role.VIEWER:
        assert time.monotonic() - started < max(bound, 0.001), "role change not seen"
        await asyncio.sleep(0.005)

    # Rotation: the old secret stops, the new one works there at once.
    _, rotated = await admin.api_keys.rotate(key.id)
    await refused_within(server, secret, max(bound, 0.001))
    assert (await server.api_keys.verify(rotated)).id == key.id

    # Revocation.
    await admin.api_keys.revoke(key.id)
    await refused_within(server, rotated, max(bound, 0.001))


async def test_a_disabled_tenant_ends_its_cached_keys_elsewhere(open_platform: Opener) -> None:
    server, admin = await open_platform(), await open_platform()
    key, secret = await new_key(admin)
    await server.api_keys.verify(secret)
    await admin.tenants.set_disabled(key.tenant_id, True)
    await refused_within(server, secret, max(bound_of(server), 0.001))
    await admin.tenants.set_disabled(key.tenant_id, False)
    assert (await server.api_keys.verify(secret)).id == key.id


async def test_a_hand_written_update_is_seen_too(open_platform: Opener) -> None:
    """The triggers, not Roost's own code, announce changes: SQL typed by an operator counts."""
    server, admin = await open_platform(), await open_platform()
    key, secret = await new_key(admin)
    await server.api_keys.verify(secret)
    await admin.database.execute(
        "UPDATE api_keys SET revoked_at = :at WHERE id = :id", {"at": now_ms(), "id": key.id}
    )
    await refused_within(server, secret, max(bound_of(server), 0.001))


async def test_a_change_in_this_process_is_seen_at_once(open_platform: Opener) -> None:
    platform = await open_platform()
    key, secret = await new_key(platform)
    await platform.api_keys.verify(secret)
    await platform.api_keys.revoke(key.id)
    with pytest.raises(Unauthorized, match="revoked"):
        await platform.api_keys.verify(secret)


async def test_last_used_writes_do_not_flush_the_cache(open_platform: Opener) -> None:
    platform = await open_platform()
    _, secret = await new_key(platform)
    await platform.api_keys.verify(secret)
    epoch = platform.auth_changes.epoch()
    await platform.database.execute("UPDATE api_keys SET last_used_at = :at", {"at": now_ms()})
    assert platform.auth_changes.epoch() == epoch


async def test_ttl_zero_reads_the_database_every_time(open_platform: Opener) -> None:
    platform = await open_platform(ttl_s=0)
    _, secret = await new_key(platform)
    await platform.api_keys.verify(secret)
    with statements(platform.database) as seen:
        await platform.api_keys.verify(secret)
        await platform.api_keys.verify(secret)
    assert len([s for s in seen if "FROM api_keys" in s]) == 2


@pytest.mark.postgres
async def test_a_lost_listener_fails_closed_then_recovers(
    postgres_url: str, tmp_path: Path
) -> None:
    """While the LISTEN connection is down no signal can arrive: every request reads the
    database (a revocation meanwhile is refused at once); once it is back, keys are cached
    again."""
    settings = load_settings(env={"ROOST_HOME": str(tmp_path / "home"),
                                  "ROOST_DATABASE_URL": postgres_url})  # fmt: skip
    platform = await Platform.open(settings)
    try:
        feed = platform.auth_changes
        assert isinstance(feed, PostgresAuthChanges)
        await asyncio.wait_for(feed.connected.wait(), 30)
        key, secret = await new_key(platform)
        await platform.api_keys.verify(secret)
        # Cut the listener off, as a network failure or a restarted PostgreSQL would.
        feed.connected.clear()
        await platform.database.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE application_name = :name AND datname = current_database()",
            {"name": APPLICATION_NAME},
        )
        started = time.monotonic()
        while feed.epoch() is not None:
            assert time.monotonic() - started < 10, "the lost listener went unnoticed"
            await asyncio.sleep(0.01)
        with statements(platform.database) as seen:
            await platform.api_keys.verify(secret)
        assert any("FROM api_keys" in s for s in seen)
        # Back again: cached after one read.
        await asyncio.wait_for(feed.connected.wait(), 30)
        await platform.api_keys.verify(secret)
        with statements(platform.database) as seen:
            assert (await platform.api_keys.verify(secret)).id == key.id
        assert seen == []
    finally:
        await platform.close()


async def test_an_entry_past_its_own_deadline_is_dropped(tmp_path: Path) -> None:
    """A key's ``expires_at`` (or a token's ``exp``) ends its entry whatever the TTL."""
    database = await Database.connect(f"sqlite:///{tmp_path / 'roost.db'}")
    try:
        from roost.security.schema import CORE_MIGRATIONS
        from roost.storage import migrate

        await migrate(database, CORE_MIGRATIONS)
        feed = SqliteAuthChanges(tmp_path / "roost.db")
        cache: VerifiedCache[str] = VerifiedCache(feed, ttl_s=300)
        epoch = cache.epoch()
        assert epoch is not None
        cache.put("gone", "value", epoch, valid_until_ms=now_ms() - 1)
        cache.put("kept", "value", epoch, valid_until_ms=now_ms() + 60_000)
        assert cache.get("gone", epoch) is None
        assert cache.get("kept", epoch) == "value"
        await feed.close()
    finally:
        await database.close()
