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

import asyncio
import sqlite3
import threading
import time
import weakref
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

    def ending_worker(self) -> threading.Thread | None:
        """The worker of a connection that was stopped but is still finishing its queue."""
        if self._running or not self._thread.is_alive():
            return None
        return self._thread

    def _close_and_stop(self) -> object:
        if self._connection is not None:
            self._connection.close()
            self._connection = None
        return _STOP_RUNNING_SENTINEL


class SQLiteConnector:
    """SQLAlchemy's ``async_creator``: connections to ``database`` on daemon workers (as
    SQLAlchemy's own aiosqlite dialect makes them), usable from the engine's threads.

    It remembers (weakly) the connections it made, so that closing the database can wait
    for the workers of force-stopped ones: such a worker may still be finishing a query
    and then answers its futures on the event loop, which must still be open by then.
    """

    def __init__(self, database: str, timeout_s: float) -> None:
        self.database = database
        self.timeout_s = timeout_s
        self._made: weakref.WeakSet[SQLiteConnection] = weakref.WeakSet()

    async def __call__(self) -> SQLiteConnection:
        connection = SQLiteConnection(
            partial(sqlite3.connect, self.database, timeout=self.timeout_s,
                    check_same_thread=False),
            iter_chunk_size=64,
        )  # fmt: skip
        connection._thread.daemon = True
        await connection  # starts the worker and opens the database
        self._made.add(connection)
        return connection

    async def drain(self) -> None:
        """Wait for the workers of stopped connections to end, at most one busy timeout
        plus a second (a query waiting on a lock ends by then)."""
        deadline = time.monotonic() + self.timeout_s + 1.0
        for connection in list(self._made):
            worker = connection.ending_worker()
            if worker is None:
                continue
            left = deadline - time.monotonic()
            if left <= 0:
                return
            await asyncio.to_thread(worker.join, left)
