"""A SQLite connection's close ends even when the connection was force-stopped meanwhile,
as SQLAlchemy does when a task is cancelled twice inside a query (at shutdown): with
aiosqlite's own close the closing task waited forever and the server could not exit."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from roost.config import StorageSettings
from roost.storage.database import Database
from roost.storage.sqlite_connection import SQLiteConnector


async def test_close_after_a_forced_stop_ends(tmp_path: Path) -> None:
    connection = await SQLiteConnector(str(tmp_path / "a.db"), 5.0)()
    await connection.execute("CREATE TABLE t (x INTEGER)")
    closing = asyncio.ensure_future(connection.close())
    await asyncio.sleep(0)  # the close has queued its job on the worker
    connection.stop()  # SQLAlchemy's forced close of the same connection
    await asyncio.wait_for(closing, timeout=30)
    connection._thread.join(timeout=30)
    assert not connection._thread.is_alive()


async def test_the_engine_keeps_its_settings_on_these_connections(tmp_path: Path) -> None:
    settings = StorageSettings(busy_timeout_ms=1234)
    database = await Database.connect(f"sqlite:///{tmp_path / 'b.db'}", settings)
    try:
        rows = await database.fetch_all("PRAGMA busy_timeout")
        mode = await database.fetch_all("PRAGMA journal_mode")
    finally:
        await database.close()
    assert list(rows[0].values()) == [1234]
    assert list(mode[0].values()) == ["wal"]


async def test_closing_waits_for_a_stopped_workers_last_query(tmp_path: Path) -> None:
    connector = SQLiteConnector(str(tmp_path / "c.db"), 5.0)
    connection = await connector()
    running = asyncio.ensure_future(connection._execute(time.sleep, 0.5))  # a slow query
    await asyncio.sleep(0)
    connection.stop()  # forced, as SQLAlchemy does: the worker ends after the query
    await connector.drain()
    assert not connection._thread.is_alive()
    # Its answer reached the loop while the loop was open.
    assert await asyncio.wait_for(running, timeout=30) is None
