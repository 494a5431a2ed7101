"""Wake-ups for run-event subscribers, within this process and across processes.

Events themselves are rows of ``run_events``; a signal only says "run X has new rows",
so a lost signal costs latency (the subscriber's poll finds the rows), never an event.
Across processes the signal travels by PostgreSQL ``NOTIFY`` or Redis pub/sub when the
deployment has one; on SQLite alone subscribers in other processes poll.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from typing import Any, Protocol

from roost.observe.logging import get_logger
from roost.storage import Database
from roost.storage.database import asyncpg_url
from roost.storage.redis import RedisClient

log = get_logger("roost.runs")
CHANNEL = "roost_run_events"
# NOTIFY payloads are limited to 8000 bytes; run ids are short, so batches stay far below.
_MAX_PAYLOAD = 7000


class Transport(Protocol):
    """Carries "these runs have new events" to every other process of the deployment."""

    # True when signals reach other processes: their subscribers then poll only as a
    # safety net (a dropped connection), not to find new events.
    pushes: bool

    async def start(self, deliver: LocalSignals) -> None: ...

    async def send(self, run_ids: Iterable[str]) -> None: ...

    async def close(self) -> None: ...


class LocalSignals:
    """In-process waiters per run; cross-process transports deliver into it too."""

    def __init__(self) -> None:
        self._waiters: dict[str, set[asyncio.Event]] = {}

    def register(self, run_id: str) -> asyncio.Event:
        event = asyncio.Event()
        self._waiters.setdefault(run_id, set()).add(event)
        return event

    def unregister(self, run_id: str, event: asyncio.Event) -> None:
        waiters = self._waiters.get(run_id)
        if waiters is not None:
            waiters.discard(event)
            if not waiters:
                del self._waiters[run_id]

    def wake(self, run_ids: Iterable[str]) -> None:
        for run_id in run_ids:
            for event in self._waiters.get(run_id, ()):
                event.set()


class NoTransport:
    """SQLite alone: other processes find new events by polling."""

    pushes = False

    async def start(self, deliver: LocalSignals) -> None:
        return None

    async def send(self, run_ids: Iterable[str]) -> None:
        return None

    async def close(self) -> None:
        return None


def _chunks(run_ids: Iterable[str]) -> list[str]:
    chunks: list[str] = []
    current = ""
    for run_id in sorted(set(run_ids)):
        if current and len(current) + len(run_id) + 1 > _MAX_PAYLOAD:
            chunks.append(current)
            current = ""
        current = f"{current},{run_id}" if current else run_id
    if current:
        chunks.append(current)
    return chunks


class PostgresTransport:
    """``LISTEN``/``NOTIFY`` on the deployment's own PostgreSQL database."""

    pushes = True

    def __init__(self, database: Database) -> None:
        self.database = database
        self._conn: Any = None
        self._deliver: LocalSignals | None = None

    async def start(self, deliver: LocalSignals) -> None:
        import asyncpg

        self._deliver = deliver
        self._conn = await asyncpg.connect(asyncpg_url(self.database.url))
        await self._conn.add_listener(CHANNEL, self._on_notify)

    def _on_notify(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        if self._deliver is not None:
            self._deliver.wake(payload.split(","))

    async def send(self, run_ids: Iterable[str]) -> None:
        for chunk in _chunks(run_ids):
            await self.database.execute("SELECT pg_notify(:c, :p)", {"c": CHANNEL, "p": chunk})

    async def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):  # closing a connection the server dropped
                await self._conn.close()
            self._conn = None


class RedisTransport:
    """Redis pub/sub, when the deployment configures Redis."""

    pushes = True

    def __init__(self, redis: RedisClient) -> None:
        self.redis = redis
        self._task: asyncio.Task[None] | None = None
        self._pubsub: Any = None

    async def start(self, deliver: LocalSignals) -> None:
        self._pubsub = self.redis.client.pubsub()
        await self._pubsub.subscribe(CHANNEL)
        self._task = asyncio.create_task(self._listen(deliver))

    async def _listen(self, deliver: LocalSignals) -> None:
        while True:
            try:
                message = await self._pubsub.get_message(
                    ignore_subscribe_messages=True, timeout=1.0
                )
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis went away: subscribers still poll the table
                log.warning("run event signals from redis failed", error=str(exc))
                await asyncio.sleep(1.0)
                continue
            if message is not None:
                data = message["data"]
                text = data.decode() if isinstance(data, bytes) else str(data)
                deliver.wake(text.split(","))

    async def send(self, run_ids: Iterable[str]) -> None:
        for chunk in _chunks(run_ids):
            await self.redis.client.publish(CHANNEL, chunk)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._pubsub is not None:
            with contextlib.suppress(Exception):
                await self._pubsub.aclose()


def choose_transport(database: Database, redis: RedisClient | None) -> Transport:
    """Redis when configured, else PostgreSQL's own NOTIFY, else none (SQLite)."""
    if redis is not None:
        return RedisTransport(redis)
    if database.dialect == "postgresql":
        return PostgresTransport(database)
    return NoTransport()
