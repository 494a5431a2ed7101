"""Whether API keys or tenants may have changed anywhere in the deployment since a moment,
so that credentials a process keeps verified in memory (``key_cache``) are dropped as soon
as they may be stale.

The database announces every change itself: triggers on ``api_keys`` and ``tenants``
(schema component ``auth_changes``) bump a one-row counter in the changing transaction,
and on PostgreSQL also NOTIFY. A change by any process is seen, whether it came through
the admin API, ``roost keys revoke`` or a hand-written UPDATE.

- SQLite (one host): the counter is read on every request through a plain ``sqlite3``
  connection of this process's own: a primary-key read of a one-row table, a few
  microseconds and no thread hop. A change is seen by the next request after its commit.
- PostgreSQL: a LISTEN connection counts notifications, so a change is seen as soon as its
  NOTIFY arrives (milliseconds after the commit). While that connection is down or not
  yet listening, the feed vouches for nothing and every request reads the database.

:meth:`AuthChangeFeed.epoch` is the moment's mark: cached entries taken under another mark
are stale. ``None`` means "cannot tell": never serve from memory then (fail closed).
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from roost.observe.logging import get_logger
from roost.security.schema import AUTH_CHANGES_CHANNEL
from roost.storage import Database
from roost.storage.database import asyncpg_url

log = get_logger("roost.security")
Epoch = tuple[int, int]
# A reader of a WAL database waits only in rare moments (a checkpoint resetting the log);
# longer than this and the request reads the database instead of blocking the loop.
_SQLITE_BUSY_S = 0.05
_PG_RETRY_S = 1.0
# A LISTEN connection that died without a word (a dropped network path) is found this fast.
_PG_PING_S = 2.0
APPLICATION_NAME = "roost-auth-changes"


class AuthChangeFeed:
    """No shared signal (an in-memory database, or caching off): vouches for nothing."""

    def __init__(self) -> None:
        self._local = 0

    def epoch(self) -> Epoch | None:
        return None

    def changed_here(self) -> None:
        """This process committed a change: stale at once here, without waiting for a signal."""
        self._local += 1

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None


class SqliteAuthChanges(AuthChangeFeed):
    """Reads the change counter of a SQLite file on every call."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path
        self._conn: sqlite3.Connection | None = None

    def epoch(self) -> Epoch | None:
        try:
            if self._conn is None:
                self._conn = sqlite3.connect(
                    self.path, timeout=_SQLITE_BUSY_S, isolation_level=None,
                    check_same_thread=False,
                )  # fmt: skip
            row = self._conn.execute("SELECT version FROM auth_epoch WHERE id = 1").fetchone()
        except sqlite3.Error as exc:
            log.warning("auth change counter unreadable; reading keys from the database",
                        error=str(exc))  # fmt: skip
            self._drop()
            return None
        if row is None:
            return None
        return (int(row[0]), self._local)

    def _drop(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(sqlite3.Error):
                self._conn.close()
            self._conn = None

    async def close(self) -> None:
        self._drop()


class PostgresAuthChanges(AuthChangeFeed):
    """Counts NOTIFYs on a LISTEN connection of its own, reconnecting when it drops."""

    def __init__(self, url: str) -> None:
        super().__init__()
        self.url = url
        self._notified = 0
        self._listening = False
        self._conn: Any = None
        self._task: asyncio.Task[None] | None = None
        self.connected = asyncio.Event()  # set each time LISTEN is active (tests wait on it)

    def epoch(self) -> Epoch | None:
        if not self._listening or self._conn is None or self._conn.is_closed():
            return None
        return (self._notified, self._local)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._keep_listening())

    async def _keep_listening(self) -> None:
        while True:
            try:
                await self._listen_until_lost()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("auth change listener lost; reading keys from the database",
                            error=str(exc))  # fmt: skip
            self._listening = False
            self.connected.clear()
            await self._close_conn()
            await asyncio.sleep(_PG_RETRY_S)

    async def _listen_until_lost(self) -> None:
        import asyncpg

        # Named, so an operator reading pg_stat_activity knows what this connection is.
        self._conn = await asyncpg.connect(
            self.url, server_settings={"application_name": APPLICATION_NAME}
        )
        await self._conn.add_listener(AUTH_CHANGES_CHANNEL, self._on_notify)
        # Whatever changed while nobody listened is unknown: everything cached is stale.
        self._notified += 1
        self._listening = True
        self.connected.set()
        while True:
            await asyncio.sleep(_PG_PING_S)
            await self._conn.fetchval("SELECT 1", timeout=_PG_PING_S)

    def _on_notify(self, _conn: Any, _pid: int, _channel: str, _payload: str) -> None:
        self._notified += 1

    async def _close_conn(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):  # a connection the server already dropped
                await conn.close(timeout=1.0)

    async def close(self) -> None:
        self._listening = False
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._close_conn()


def open_auth_changes(database: Database) -> AuthChangeFeed:
    """The feed for ``database``'s backend (not started)."""
    if database.dialect == "postgresql":
        return PostgresAuthChanges(asyncpg_url(database.url))
    path = make_url(database.url).database
    if database.dialect == "sqlite" and path and path != ":memory:":
        return SqliteAuthChanges(Path(path).expanduser())
    return AuthChangeFeed()
