"""aiosqlite connections for the SQLite engine, with a close that cannot hang.

aiosqlite runs each connection on a worker thread fed by a queue. Its ``close()`` ends by
queueing a stop for that worker and awaiting it; if the connection was already stopped
(SQLAlchemy force-stops a connection whose graceful close is interrupted, which happens
when a task is cancelled twice in a query, e.g. at shutdown), the worker has exited,
nothing ever answers, and the closing task waits forever: the event loop then cannot
finish at shutdown. Here ``close()`` queues the stop only while the worker still runs.

The forced stop itself (``stop()``, never awaited) queues no reply: by the time the worker
reaches it the event loop may be closed, and answering a closed loop raised on the worker.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable, Callable
from functools import partial

import aiosqlite
from aiosqlite.core import _STOP_RUNNING_SENTINEL  # the worker's "stop" result (aiosqlite <1)


class SQLiteConnection(aiosqlite.Connection):
    async def close(self) -> None:
        if self._connection is None:
            return
        try:
            await self._execute(self._conn.close)
        finally:
            self._connection = None
            if self._running:  # else a stop is queued already and the worker is ending
                stopped = super().stop()
                if stopped is not None:
                    await stopped

    def stop(self) -> None:
        self._running = False
        self._tx.put_nowait((None, self._close_and_stop))

    def _close_and_stop(self) -> object:
        if self._connection is not None:
            self._connection.close()
            self._connection = None
        return _STOP_RUNNING_SENTINEL


def connector(database: str, timeout_s: float) -> Callable[[], Awaitable[SQLiteConnection]]:
    """SQLAlchemy's ``async_creator``: a connection to ``database`` on a daemon worker (as
    SQLAlchemy's own aiosqlite dialect makes them), usable from the engine's threads."""

    async def connect() -> SQLiteConnection:
        connection = SQLiteConnection(
            partial(sqlite3.connect, database, timeout=timeout_s, check_same_thread=False),
            iter_chunk_size=64,
        )
        connection._thread.daemon = True
        await connection  # starts the worker and opens the database
        return connection

    return connect
