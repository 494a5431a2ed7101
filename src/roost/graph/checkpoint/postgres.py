"""A checkpointer on PostgreSQL through psycopg 3 (its sync and async connections).

Many workers can share one database: each ``put`` is one transaction, and events
are keyed so a task re-run after a crash replaces its earlier record.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from roost.errors import StorageUnavailable
from roost.graph.checkpoint import base, sql

SQL = sql.statements("%s", upsert_checkpoint=sql.UPSERT_CHECKPOINT, upsert_event=sql.UPSERT_EVENT)


def _redacted(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        return urlunsplit(parts._replace(netloc=parts.netloc.replace(parts.password, "***")))
    return url


class PostgresCheckpointer:
    """Stores threads in PostgreSQL; creates its tables on first use."""

    def __init__(self, url: str, *, tenant_id: str = "default", connect_timeout_s: float = 10.0):
        import psycopg

        self.tenant_id = tenant_id
        self.url = url
        self._timeout = connect_timeout_s
        try:
            self._conn = psycopg.connect(url, connect_timeout=int(connect_timeout_s))
        except psycopg.OperationalError as exc:
            raise StorageUnavailable(f"cannot reach PostgreSQL at {_redacted(url)}: {exc}") from exc
        with self._conn.transaction():
            self._conn.execute(sql.schema("BYTEA", "DOUBLE PRECISION"))
        self._lock = threading.Lock()
        self._aconn: Any = None
        self._aconn_loop: asyncio.AbstractEventLoop | None = None
        self._alock: asyncio.Lock | None = None

    # -- sync --------------------------------------------------------------------------
    def put(
        self, checkpoints: Sequence[base.CheckpointRecord], writes: Sequence[base.WriteRecord]
    ) -> None:
        with self._lock, self._conn.transaction(), self._conn.cursor() as cur:
            if checkpoints:
                cur.executemany(
                    SQL.put_checkpoint, sql.checkpoint_rows(self.tenant_id, checkpoints)
                )
            if writes:
                cur.executemany(SQL.put_event, sql.event_rows(self.tenant_id, writes))

    def load(
        self, thread_id: str, ns: str = "", checkpoint_id: str | None = None
    ) -> base.ThreadLog:
        key = (self.tenant_id, thread_id, ns)
        with self._lock, self._conn.transaction(), self._conn.cursor() as cur:
            if checkpoint_id is None:
                target = cur.execute(SQL.head, key).fetchone()
            else:
                target = cur.execute(SQL.by_id, (*key, checkpoint_id)).fetchone()
            if target is None:
                return base.ThreadLog([], [], False)
            group = (*key, target[5], target[5])
            rows = cur.execute(SQL.group, group).fetchall()
            rows += cur.execute(SQL.snapshots, key).fetchall()
            events = cur.execute(SQL.group_events, group).fetchall()
        return sql.to_log(thread_id, ns, rows, events)

    def load_all(self, thread_id: str, ns: str = "") -> base.ThreadLog:
        key = (self.tenant_id, thread_id, ns)
        with self._lock, self._conn.transaction(), self._conn.cursor() as cur:
            rows = cur.execute(SQL.all_checkpoints, key).fetchall()
            events = cur.execute(SQL.all_events, key).fetchall()
        return sql.to_log(thread_id, ns, rows, events)

    def list_namespaces(self, thread_id: str) -> list[str]:
        with self._lock, self._conn.transaction(), self._conn.cursor() as cur:
            rows = cur.execute(SQL.namespaces, (self.tenant_id, thread_id)).fetchall()
        return [row[0] for row in rows]

    def delete_thread(self, thread_id: str) -> None:
        with self._lock, self._conn.transaction(), self._conn.cursor() as cur:
            for statement in SQL.deletes:
                cur.execute(statement, (self.tenant_id, thread_id))

    def close(self) -> None:
        self._conn.close()
        if self._aconn is not None:
            # Its event loop may be gone; closing the libpq handle needs no loop.
            self._aconn.pgconn.finish()
            self._aconn = None

    # -- async twins (psycopg's AsyncConnection, one per event loop) ---------------------
    async def _async_conn(self) -> tuple[Any, asyncio.Lock]:
        import psycopg

        loop = asyncio.get_running_loop()
        if self._aconn is None or self._aconn_loop is not loop or self._aconn.closed:
            if self._aconn is not None:
                self._aconn.pgconn.finish()
            try:
                self._aconn = await psycopg.AsyncConnection.connect(
                    self.url, connect_timeout=int(self._timeout)
                )
            except psycopg.OperationalError as exc:
                raise StorageUnavailable(
                    f"cannot reach PostgreSQL at {_redacted(self.url)}: {exc}"
                ) from exc
            self._aconn_loop = loop
            self._alock = asyncio.Lock()
        assert self._alock is not None
        return self._aconn, self._alock

    async def aput(
        self, checkpoints: Sequence[base.CheckpointRecord], writes: Sequence[base.WriteRecord]
    ) -> None:
        conn, lock = await self._async_conn()
        async with lock, conn.transaction(), conn.cursor() as cur:
            if checkpoints:
                await cur.executemany(
                    SQL.put_checkpoint, sql.checkpoint_rows(self.tenant_id, checkpoints)
                )
            if writes:
                await cur.executemany(SQL.put_event, sql.event_rows(self.tenant_id, writes))

    async def aload(
        self, thread_id: str, ns: str = "", checkpoint_id: str | None = None
    ) -> base.ThreadLog:
        conn, lock = await self._async_conn()
        key = (self.tenant_id, thread_id, ns)
        async with lock, conn.transaction(), conn.cursor() as cur:
            if checkpoint_id is None:
                target = await (await cur.execute(SQL.head, key)).fetchone()
            else:
                target = await (await cur.execute(SQL.by_id, (*key, checkpoint_id))).fetchone()
            if target is None:
                return base.ThreadLog([], [], False)
            group = (*key, target[5], target[5])
            rows = await (await cur.execute(SQL.group, group)).fetchall()
            rows += await (await cur.execute(SQL.snapshots, key)).fetchall()
            events = await (await cur.execute(SQL.group_events, group)).fetchall()
        return sql.to_log(thread_id, ns, rows, events)

    async def aload_all(self, thread_id: str, ns: str = "") -> base.ThreadLog:
        conn, lock = await self._async_conn()
        key = (self.tenant_id, thread_id, ns)
        async with lock, conn.transaction(), conn.cursor() as cur:
            rows = await (await cur.execute(SQL.all_checkpoints, key)).fetchall()
            events = await (await cur.execute(SQL.all_events, key)).fetchall()
        return sql.to_log(thread_id, ns, rows, events)

    async def alist_namespaces(self, thread_id: str) -> list[str]:
        conn, lock = await self._async_conn()
        async with lock, conn.transaction(), conn.cursor() as cur:
            rows = await (await cur.execute(SQL.namespaces, (self.tenant_id, thread_id))).fetchall()
        return [row[0] for row in rows]

    async def adelete_thread(self, thread_id: str) -> None:
        conn, lock = await self._async_conn()
        async with lock, conn.transaction(), conn.cursor() as cur:
            for statement in SQL.deletes:
                await cur.execute(statement, (self.tenant_id, thread_id))

    async def aclose(self) -> None:
        """Close the async connection (call from the loop that used it)."""
        if self._aconn is not None:
            await self._aconn.close()
            self._aconn = None
