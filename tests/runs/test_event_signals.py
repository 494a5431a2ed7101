"""Run events reach a subscriber in another process by push (PostgreSQL NOTIFY, Redis
pub/sub), not by its safety poll; on SQLite alone the subscriber polls."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from roost.runs.events import SAFETY_POLL_S, TERMINAL, RunEventLog
from roost.runs.schema import RUN_MIGRATIONS
from roost.runs.signals import NoTransport, PostgresTransport, RedisTransport, Transport
from roost.storage import Database, migrate
from roost.storage.redis import RedisClient, connect_redis


@pytest.fixture(
    params=[pytest.param("postgres", marks=pytest.mark.postgres),
            pytest.param("redis", marks=[pytest.mark.postgres, pytest.mark.redis])]
)  # fmt: skip
async def two_processes(
    request: pytest.FixtureRequest, postgres_url: str
) -> AsyncIterator[tuple[RunEventLog, RunEventLog]]:
    """Two event logs on one database, each with its own transport, as two processes."""
    databases = [await Database.connect(postgres_url) for _ in range(2)]
    await migrate(databases[0], RUN_MIGRATIONS)
    clients: list[RedisClient] = []
    if request.param == "redis":
        url = str(request.getfixturevalue("redis_url"))
        clients = [await connect_redis(url) for _ in range(2)]

    transports: list[Transport] = (
        [RedisTransport(client) for client in clients]
        if clients
        else [PostgresTransport(db) for db in databases]
    )
    logs = [RunEventLog(db, t, poll_s=0.25) for db, t in zip(databases, transports, strict=True)]
    for log in logs:
        await log.start()
    try:
        yield logs[0], logs[1]
    finally:
        for log in logs:
            await log.close()
        for client in clients:
            await client.aclose()
        for db in databases:
            await db.close()


async def test_a_pushed_event_arrives_long_before_the_safety_poll(
    two_processes: tuple[RunEventLog, RunEventLog],
) -> None:
    worker, server = two_processes
    assert server.poll_s == SAFETY_POLL_S  # with pushes, polling is only a safety net
    received: list[tuple[str, float]] = []
    first = asyncio.Event()

    async def watch() -> None:
        async for event in server.subscribe("run_1"):
            received.append((str(event["event"]), time.monotonic()))
            first.set()

    watching = asyncio.create_task(watch())
    worker.bind("run_1", "tenant-a")
    worker.publish("run_1", {"event": "token", "text": "hi"})
    # Once the first event is in, the subscriber goes back to waiting for a signal.
    await asyncio.wait_for(first.wait(), SAFETY_POLL_S * 3)
    sent = time.monotonic()
    worker.publish("run_1", {"event": TERMINAL})
    await asyncio.wait_for(watching, SAFETY_POLL_S * 3)
    assert [kind for kind, _ in received] == ["token", TERMINAL]
    assert received[-1][1] - sent < SAFETY_POLL_S / 2  # woken by the push, not the poll


async def test_sqlite_alone_keeps_polling(tmp_path: object) -> None:
    database = await Database.connect(f"sqlite:///{tmp_path}/events.db")
    try:
        log = RunEventLog(database, NoTransport(), poll_s=0.25)
        assert log.poll_s == 0.25
    finally:
        await database.close()
