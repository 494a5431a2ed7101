"""Versioned schema migrations for SQLite and PostgreSQL, one runner for both.

Each layer that owns tables declares an ordered list of :class:`Migration` under its own
``component`` name and calls :func:`migrate` at start-up. Applied versions are recorded in
``roost_schema_migrations``; every migration runs in its own transaction, and concurrent
starters serialise on a lock (PostgreSQL advisory lock, SQLite ``BEGIN IMMEDIATE``), so two
processes starting together apply each migration exactly once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from roost.storage.database import Database, now_ms

VERSION_TABLE = "roost_schema_migrations"
# Any constant works; it only has to be the same in every Roost process.
_PG_LOCK_KEY = 7_263_001


@dataclass(frozen=True, slots=True)
class Migration:
    """One schema change: statements common to both backends plus per-dialect ones."""

    component: str
    version: int
    name: str
    common: Sequence[str] = ()
    sqlite: Sequence[str] = ()
    postgresql: Sequence[str] = ()

    def statements(self, dialect: str) -> list[str]:
        specific = {"sqlite": self.sqlite, "postgresql": self.postgresql}.get(dialect, ())
        return [*self.common, *specific]


async def migrate(database: Database, migrations: Sequence[Migration]) -> list[Migration]:
    """Apply every migration not yet recorded, in version order; return those applied."""
    _check_order(migrations)
    async with database.transaction() as conn:
        await _lock(conn, database.dialect)
        await conn.execute(
            text(
                f"CREATE TABLE IF NOT EXISTS {VERSION_TABLE} ("
                " component TEXT NOT NULL, version INTEGER NOT NULL, name TEXT NOT NULL,"
                " applied_at BIGINT NOT NULL, PRIMARY KEY (component, version))"
            )
        )
    applied: list[Migration] = []
    for migration in migrations:
        async with database.transaction() as conn:
            await _lock(conn, database.dialect)
            done = await conn.execute(
                text(f"SELECT 1 FROM {VERSION_TABLE} WHERE component = :c AND version = :v"),
                {"c": migration.component, "v": migration.version},
            )
            if done.first() is not None:
                continue
            for statement in migration.statements(database.dialect):
                await conn.exec_driver_sql(statement)
            await conn.execute(
                text(
                    f"INSERT INTO {VERSION_TABLE} (component, version, name, applied_at)"
                    " VALUES (:c, :v, :n, :t)"
                ),
                {
                    "c": migration.component,
                    "v": migration.version,
                    "n": migration.name,
                    "t": now_ms(),
                },
            )
            applied.append(migration)
    return applied


async def applied_versions(database: Database, component: str) -> list[int]:
    """Versions of ``component`` recorded as applied, ascending."""
    rows = await database.fetch_all(
        f"SELECT version FROM {VERSION_TABLE} WHERE component = :c ORDER BY version",
        {"c": component},
    )
    return [int(row["version"]) for row in rows]


async def _lock(conn: AsyncConnection, dialect: str) -> None:
    if dialect == "postgresql":
        await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK_KEY})
    # SQLite: the transaction began with BEGIN IMMEDIATE, which already holds the write lock.


def _check_order(migrations: Sequence[Migration]) -> None:
    seen: dict[str, int] = {}
    for migration in migrations:
        previous = seen.get(migration.component, 0)
        if migration.version <= previous:
            raise ValueError(
                f"migrations of {migration.component!r} out of order at version {migration.version}"
            )
        seen[migration.component] = migration.version
