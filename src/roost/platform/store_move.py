"""``roost migrate-store``: move a home's data between SQLite and PostgreSQL, with counts
verified table by table.

What moves: every table of the relational store (tenants, keys, audit log, agents,
threads, runs and their events, memory windows, the knowledge catalogue, usage, budgets,
caches), the thread checkpoints, and the vector items (to pgvector when the target has
it; otherwise they stay in the embedded ``memory.db``, which a PostgreSQL deployment
without pgvector keeps using). What does not: the DBOS queue's own bookkeeping, so
queued or running runs must finish first (the move refuses while any do).

The target must be empty (its schema may exist). Both sides are migrated to this
Roost's schema first, so columns match; rows are copied as they are.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import text

from roost.config import Settings, redact_url
from roost.errors import Conflict
from roost.platform.layout import HomeLayout
from roost.platform.schema import migrate_all, table_names
from roost.storage import Database
from roost.storage.migrations import VERSION_TABLE

Step = Callable[[str, int, int], None]
BATCH = 1000
CHECKPOINT_TABLES = ("graph_checkpoints", "graph_events")
# Tables of the vector store and of tools with their own bookkeeping: moved separately
# (vectors), or not at all (rows every start writes).
_NOT_COPIED_PREFIXES = ("memory_items", "memory_vec_", "memory_spaces", "memory_fts", "dbos")
_IN_FLIGHT = ("queued", "running")


@dataclass(slots=True)
class MoveReport:
    counts: dict[str, tuple[int, int]] = field(default_factory=dict)  # table -> (from, to)
    notes: list[str] = field(default_factory=list)

    @property
    def mismatched(self) -> list[str]:
        return [t for t, (a, b) in self.counts.items() if a != b]


def target_settings(settings: Settings, url: str) -> Settings:
    moved = settings.model_copy(deep=True)
    moved.storage.url = url
    return moved


async def move_store(settings: Settings, target_url: str, step: Step | None = None) -> MoveReport:
    report: Step = step or (lambda _n, _d, _t: None)
    target = target_settings(settings, target_url)
    here, there = HomeLayout.of(settings), HomeLayout.of(target)
    if here.dialect == there.dialect:
        raise Conflict(f"the home already uses {here.dialect}: nothing to move")
    source_db = await Database.connect(settings.database_url, settings.storage)
    target_db = await Database.connect(target_url, settings.storage)
    try:
        await _refuse_in_flight(source_db)
        await migrate_all(source_db)
        await migrate_all(target_db)
        await _refuse_non_empty(target_db, target_url)
        result = MoveReport()
        tables = [t for t in await table_names(source_db) if _copied(t)]
        # Tenants first: keys and audit events reference them.
        tables.sort(key=lambda t: (t != "tenants", t))
        for table in tables:
            result.counts[table] = await copy_table(source_db, target_db, table, report)
        await _move_checkpoints(settings, target, here, there, result, report)
        await _move_vectors(settings, target, source_db, target_db, here, result, report)
    finally:
        await source_db.close()
        await target_db.close()
    if result.mismatched:
        raise Conflict(
            "row counts differ after the move: "
            + ", ".join(f"{t} {result.counts[t][0]} -> {result.counts[t][1]}" for t in result.mismatched)
        )  # fmt: skip
    return result


# Rows the migrations themselves write (the target has its own): neither copied nor "data".
_SEEDED_BY_MIGRATIONS = frozenset({"auth_epoch"})


def _copied(table: str) -> bool:
    return (
        table != VERSION_TABLE
        and table not in _SEEDED_BY_MIGRATIONS
        and table not in CHECKPOINT_TABLES
        and not table.startswith(_NOT_COPIED_PREFIXES)
    )


async def copy_table(source: Database, target: Database, table: str, step: Step) -> tuple[int, int]:
    """Copy every row of ``table``; returns the row counts of both sides afterwards."""
    total = await _count(source, table)
    done = 0
    step(table, 0, total)
    async with source.engine.connect() as reading:
        result = await reading.stream(text(f'SELECT * FROM "{table}"'))
        async for rows in result.mappings().partitions(BATCH):
            batch = [dict(row) for row in rows]
            columns = list(batch[0])
            names = ", ".join(f'"{c}"' for c in columns)
            values = ", ".join(f":{c}" for c in columns)
            async with target.transaction() as writing:
                await writing.execute(
                    text(f'INSERT INTO "{table}" ({names}) VALUES ({values})'), batch
                )
            done += len(batch)
            step(table, done, total)
    if target.dialect == "postgresql" and table == "run_events":
        # Ids were copied as they are: the sequence must continue after the largest.
        await target.execute(
            "SELECT setval(pg_get_serial_sequence('run_events', 'id'),"
            " COALESCE((SELECT MAX(id) FROM run_events), 0) + 1, false)"
        )
    return total, await _count(target, table)


async def _count(database: Database, table: str) -> int:
    row = await database.fetch_one(f'SELECT COUNT(*) AS n FROM "{table}"')
    return int(row["n"]) if row else 0


async def _refuse_in_flight(database: Database) -> None:
    if "agent_runs" not in await table_names(database):
        return
    row = await database.fetch_one(
        "SELECT COUNT(*) AS n FROM agent_runs WHERE status IN ('queued', 'running')"
    )
    if row and int(row["n"]):
        raise Conflict(
            f"{row['n']} run(s) are queued or running: let them finish (or cancel them) and"
            " stop the server and workers before moving the store"
        )


async def _refuse_non_empty(database: Database, url: str) -> None:
    for table in await table_names(database):
        if table in (VERSION_TABLE, "tenants", *_SEEDED_BY_MIGRATIONS) or table.startswith("dbos"):
            continue
        if await database.fetch_one(f'SELECT 1 AS one FROM "{table}" LIMIT 1'):
            raise Conflict(
                f"the target database already holds data (table {table}): use an empty one"
            )
    tenants = await database.fetch_all("SELECT name FROM tenants")
    if [t["name"] for t in tenants] not in ([], ["default"]):
        raise Conflict("the target database already holds tenants: use an empty one")
    # A fresh target may have its default tenant from a first start: the source's replaces it.
    await database.execute("DELETE FROM tenants")


async def _move_checkpoints(
    settings: Settings, target: Settings, here: HomeLayout, there: HomeLayout,
    report: MoveReport, step: Step,
) -> None:  # fmt: skip
    from roost.graph.checkpoint import sql

    source_url = _checkpoints_at(settings, here, must_exist=True)
    target_url = _checkpoints_at(target, there, must_exist=False)
    if source_url is None or target_url is None:
        report.notes.append("no thread checkpoints to move")
        return
    source = await Database.connect(source_url)
    destination = await Database.connect(target_url)
    try:
        on_sqlite = destination.dialect == "sqlite"
        blob, real, options = (
            ("BLOB", "REAL", "WITHOUT ROWID") if on_sqlite else ("BYTEA", "DOUBLE PRECISION", "")
        )
        for statement in sql.schema(blob, real, options).split(";"):
            if statement.strip():
                await destination.execute(statement)
        present = await table_names(source)
        for table in CHECKPOINT_TABLES:
            if await destination.fetch_one(f"SELECT 1 AS one FROM {table} LIMIT 1"):
                raise Conflict(f"{redact_url(target_url)} already holds thread checkpoints")
        for table in CHECKPOINT_TABLES:
            if table in present:
                report.counts[table] = await copy_table(source, destination, table, step)
    finally:
        await source.close()
        await destination.close()


def _checkpoints_at(settings: Settings, layout: HomeLayout, *, must_exist: bool) -> str | None:
    """Where a home keeps thread checkpoints: its PostgreSQL database, or a SQLite file
    (None for a source file that was never made)."""
    if layout.checkpoints is None:
        return settings.database_url
    if must_exist and not layout.checkpoints.exists():
        return None
    return f"sqlite:///{layout.checkpoints}"


async def _move_vectors(
    settings: Settings, target: Settings, source_db: Database, target_db: Database,
    here: HomeLayout, report: MoveReport, step: Step,
) -> None:  # fmt: skip
    from roost.memory import vector_transfer

    if here.dialect == "sqlite":
        if not here.vectors.exists():
            return
        if not await _has_pgvector(target_db) or target.memory.vector_backend == "sqlite":
            report.notes.append(
                f"vectors stay in {here.vectors}: the target has no pgvector, and a PostgreSQL"
                " home without it keeps using that file"
            )
            return
        rows = await asyncio.to_thread(lambda: list(vector_transfer.read_sqlite(here.vectors)))
        step("vectors", 0, len(rows))
        for start in range(0, len(rows), BATCH):
            await vector_transfer.write_postgres(target_db, rows[start : start + BATCH])
            step("vectors", min(start + BATCH, len(rows)), len(rows))
        moved = await target_db.fetch_one("SELECT COUNT(*) AS n FROM memory_items")
        report.counts["vectors"] = (len(rows), int(moved["n"]) if moved else 0)
        return
    if "memory_items" not in await table_names(source_db):
        return
    destination = target.memory.vector_path or target.home / "memory.db"
    if await asyncio.to_thread(_holds_vectors, destination):
        raise Conflict(f"{destination} already holds vectors: move it away first")
    rows = await vector_transfer.read_postgres(source_db)
    step("vectors", 0, len(rows))
    await asyncio.to_thread(vector_transfer.write_sqlite, Path(destination), rows)
    step("vectors", len(rows), len(rows))
    count = await asyncio.to_thread(vector_transfer.count_sqlite, destination) if rows else 0
    report.counts["vectors"] = (len(rows), count)


def _holds_vectors(path: Path) -> bool:
    from roost.memory import vector_transfer

    return path.exists() and vector_transfer.count_sqlite(path) > 0


async def _has_pgvector(database: Database) -> bool:
    row = await database.fetch_one(
        "SELECT 1 AS ok FROM pg_available_extensions WHERE name = 'vector'"
    )
    return row is not None
