"""Async access to Roost's relational store: embedded SQLite or PostgreSQL.

One small surface over SQLAlchemy Core so that services write each query once
with ``:name`` parameters and run it on either backend. Timestamps are integer
epoch milliseconds and ids are text made in Python, so rows look the same on
both backends.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from roost.config import StorageSettings, redact_url
from roost.errors import StorageUnavailable
from roost.storage.sqlite_connection import SQLiteConnector

Params = Mapping[str, Any]
Row = dict[str, Any]


def asyncpg_url(url: str) -> str:
    """The ``postgresql://`` form asyncpg takes of a SQLAlchemy URL that may name a driver."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(scheme="postgresql"))


def now_ms() -> int:
    """Current time as integer epoch milliseconds, the timestamp format of every table."""
    return time.time_ns() // 1_000_000


class Database:
    """A pool of connections to one SQLite file or one PostgreSQL database."""

    def __init__(
        self, engine: AsyncEngine, url: str, sqlite_connector: SQLiteConnector | None = None
    ) -> None:
        self.engine = engine
        self.url = url
        self.dialect = engine.dialect.name  # "sqlite" or "postgresql"
        self._sqlite_connector = sqlite_connector

    @classmethod
    async def connect(cls, url: str, settings: StorageSettings | None = None) -> Database:
        """Open the database at ``url`` and check that it answers.

        Raises :class:`StorageUnavailable` naming the URL (password redacted) when it does not.
        """
        settings = settings or StorageSettings()
        engine, sqlite_connector = _create_engine(url, settings)
        database = cls(engine, url, sqlite_connector)
        try:
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except (OSError, DBAPIError, OperationalError) as exc:
            await engine.dispose()
            reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
            raise StorageUnavailable(
                f"cannot reach the database at {redact_url(url)}: {reason}"
            ) from exc
        return database

    async def close(self) -> None:
        await self.engine.dispose()
        if self._sqlite_connector is not None:
            await self._sqlite_connector.drain()

    async def ping(self) -> None:
        """Raise :class:`StorageUnavailable` unless the database answers a trivial query."""
        try:
            async with self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except (OSError, DBAPIError) as exc:
            raise StorageUnavailable(
                f"database at {redact_url(self.url)} is not answering"
            ) from exc

    async def fetch_all(self, sql: str, params: Params | None = None) -> list[Row]:
        async with self.engine.connect() as conn:
            result = await conn.execute(text(sql), dict(params or {}))
            return [dict(row) for row in result.mappings()]

    async def fetch_one(self, sql: str, params: Params | None = None) -> Row | None:
        rows = await self.fetch_all(sql, params)
        return rows[0] if rows else None

    async def execute(self, sql: str, params: Params | None = None) -> int:
        """Run one statement in its own transaction; return the number of rows it touched."""
        async with self.transaction() as conn:
            result = await conn.execute(text(sql), dict(params or {}))
            return int(result.rowcount or 0)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        """A connection inside one transaction, committed on success and rolled back on error.

        On SQLite the transaction takes the write lock at BEGIN (``BEGIN IMMEDIATE``) so that
        two writers queue on the busy timeout instead of failing when one upgrades a read lock.
        """
        async with self.engine.connect() as conn:
            if self.dialect == "sqlite":
                conn = await conn.execution_options(sqlite_begin="BEGIN IMMEDIATE")
            async with conn.begin():
                yield conn


def _create_engine(
    url: str, settings: StorageSettings
) -> tuple[AsyncEngine, SQLiteConnector | None]:
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        connector = SQLiteConnector(database or ":memory:", settings.busy_timeout_ms / 1000)
        engine = create_async_engine(
            parsed.set(drivername="sqlite+aiosqlite"), async_creator=connector
        )
        _configure_sqlite(engine, settings)
        return engine, connector
    if backend in ("postgresql", "postgres"):
        engine = create_async_engine(
            parsed.set(drivername="postgresql+asyncpg"),
            pool_size=settings.pool_size,
            pool_pre_ping=True,
            connect_args={"timeout": settings.connect_timeout_s},
        )
        return engine, None
    raise StorageUnavailable(
        f"unsupported database URL {redact_url(url)}: use sqlite or postgresql"
    )


def _configure_sqlite(engine: AsyncEngine, settings: StorageSettings) -> None:
    sync_engine = engine.sync_engine

    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from the driver so BEGIN is ours to emit.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(settings.busy_timeout_ms)}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql(conn.get_execution_options().get("sqlite_begin", "BEGIN"))
