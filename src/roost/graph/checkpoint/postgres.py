"""A checkpointer on PostgreSQL through psycopg 3 (its sync and async connections).

Many workers can share one database: each ``put`` is one transaction, and events
are keyed so a task re-run after a crash replaces its earlier record.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Sequence
from typing import Any

from roost.errors import StorageUnavailable
from roost.graph.checkpoint.base import CheckpointRecord, ThreadLog, WriteRecord

SCHEMA = """
CREATE TABLE IF NOT EXISTS graph_checkpoints (
    tenant_id TEXT NOT NULL, thread_id TEXT NOT NULL, ns TEXT NOT NULL,
    checkpoint_id TEXT NOT NULL, parent_id TEXT, step INTEGER NOT NULL,
    source TEXT NOT NULL, created_at DOUBLE PRECISION NOT NULL, metadata TEXT NOT NULL,
    snapshot BYTEA,
    PRIMARY KEY (tenant_id, thread_id, ns, checkpoint_id)
);
CREATE TABLE IF NOT EXISTS graph_events (
    tenant_id TEXT NOT NULL, thread_id TEXT NOT NULL, ns TEXT NOT NULL,
    checkpoint_id TEXT NOT NULL, task_id TEXT NOT NULL, kind TEXT NOT NULL,
    idx INTEGER NOT NULL, node TEXT NOT NULL, payload BYTEA NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (tenant_id, thread_id, ns, checkpoint_id, task_id, kind)
);
"""
_PUT_CHECKPOINT = (
    "INSERT INTO graph_checkpoints VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s) "
    "ON CONFLICT (tenant_id, thread_id, ns, checkpoint_id) DO UPDATE SET "
    "snapshot = EXCLUDED.snapshot, metadata = EXCLUDED.metadata"
)
_PUT_EVENT = (
    "INSERT INTO graph_events VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s) "
    "ON CONFLICT (tenant_id, thread_id, ns, checkpoint_id, task_id, kind) DO UPDATE SET "
    "idx = EXCLUDED.idx, node = EXCLUDED.node, payload = EXCLUDED.payload, "
    "created_at = EXCLUDED.created_at"
)
_LOAD_CHECKPOINTS = (
    "SELECT checkpoint_id, parent_id, step, source, created_at, metadata, snapshot "
    "FROM graph_checkpoints WHERE tenant_id=%s AND thread_id=%s AND ns=%s ORDER BY checkpoint_id"
)
_LOAD_EVENTS = (
    "SELECT checkpoint_id, task_id, kind, idx, node, payload, created_at "
    "FROM graph_events WHERE tenant_id=%s AND thread_id=%s AND ns=%s"
)
_NAMESPACES = (
    "SELECT DISTINCT ns FROM graph_checkpoints WHERE tenant_id=%s AND thread_id=%s ORDER BY ns"
)
_DELETES = (
    "DELETE FROM graph_checkpoints WHERE tenant_id=%s AND thread_id=%s",
    "DELETE FROM graph_events WHERE tenant_id=%s AND thread_id=%s",
)


def _redacted(url: str) -> str:
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urlunsplit(parts._replace(netloc=netloc))
    return url


class PostgresCheckpointer:
    """Stores threads in PostgreSQL; creates its two tables on first use."""

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
            self._conn.execute(SCHEMA)
        self._lock = threading.Lock()
        self._aconn: Any = None
        self._aconn_loop: asyncio.AbstractEventLoop | None = None
        self._alock: asyncio.Lock | None = None

    @staticmethod
    def _checkpoint_rows(tenant: str, checkpoints: Sequence[CheckpointRecord]) -> list[tuple]:
        return [
            (
                tenant,
                c.thread_id,
                c.ns,
                c.checkpoint_id,
                c.parent_id,
                c.step,
                c.source,
                c.created_at,
                json.dumps(c.metadata),
                c.snapshot,
            )
            for c in checkpoints
        ]

    @staticmethod
    def _event_rows(tenant: str, writes: Sequence[WriteRecord]) -> list[tuple]:
        return [
            (
                tenant,
                w.thread_id,
                w.ns,
                w.checkpoint_id,
                w.task_id,
                w.kind,
                w.idx,
                w.node,
                w.payload,
                w.created_at,
            )
            for w in writes
        ]

    @staticmethod
    def _log(thread_id: str, ns: str, rows: list[tuple], events: list[tuple]) -> ThreadLog:
        return ThreadLog(
            checkpoints=[
                CheckpointRecord(
                    thread_id,
                    ns,
                    r[0],
                    r[1],
                    r[2],
                    r[3],
                    r[4],
                    None if r[6] is None else bytes(r[6]),
                    json.loads(r[5]),
                )
                for r in rows
            ],
            writes=[
                WriteRecord(thread_id, ns, e[0], e[1], e[2], e[3], e[4], bytes(e[5]), e[6])
                for e in events
            ],
        )

    # -- sync --------------------------------------------------------------------------
    def put(self, checkpoints: Sequence[CheckpointRecord], writes: Sequence[WriteRecord]) -> None:
        with self._lock, self._conn.transaction(), self._conn.cursor() as cur:
            if checkpoints:
                cur.executemany(_PUT_CHECKPOINT, self._checkpoint_rows(self.tenant_id, checkpoints))
            if writes:
                cur.executemany(_PUT_EVENT, self._event_rows(self.tenant_id, writes))

    def load(self, thread_id: str, ns: str = "") -> ThreadLog:
        key = (self.tenant_id, thread_id, ns)
        with self._lock, self._conn.transaction(), self._conn.cursor() as cur:
            rows = cur.execute(_LOAD_CHECKPOINTS, key).fetchall()
            events = cur.execute(_LOAD_EVENTS, key).fetchall()
        return self._log(thread_id, ns, rows, events)

    def list_namespaces(self, thread_id: str) -> list[str]:
        with self._lock, self._conn.transaction(), self._conn.cursor() as cur:
            rows = cur.execute(_NAMESPACES, (self.tenant_id, thread_id)).fetchall()
        return [row[0] for row in rows]

    def delete_thread(self, thread_id: str) -> None:
        with self._lock, self._conn.transaction(), self._conn.cursor() as cur:
            for statement in _DELETES:
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
        self, checkpoints: Sequence[CheckpointRecord], writes: Sequence[WriteRecord]
    ) -> None:
        conn, lock = await self._async_conn()
        async with lock, conn.transaction(), conn.cursor() as cur:
            if checkpoints:
                await cur.executemany(
                    _PUT_CHECKPOINT, self._checkpoint_rows(self.tenant_id, checkpoints)
                )
            if writes:
                await cur.executemany(_PUT_EVENT, self._event_rows(self.tenant_id, writes))

    async def aload(self, thread_id: str, ns: str = "") -> ThreadLog:
        conn, lock = await self._async_conn()
        key = (self.tenant_id, thread_id, ns)
        async with lock, conn.transaction(), conn.cursor() as cur:
            rows = await (await cur.execute(_LOAD_CHECKPOINTS, key)).fetchall()
            events = await (await cur.execute(_LOAD_EVENTS, key)).fetchall()
        return self._log(thread_id, ns, rows, events)

    async def alist_namespaces(self, thread_id: str) -> list[str]:
        conn, lock = await self._async_conn()
        async with lock, conn.transaction(), conn.cursor() as cur:
            rows = await (await cur.execute(_NAMESPACES, (self.tenant_id, thread_id))).fetchall()
        return [row[0] for row in rows]

    async def adelete_thread(self, thread_id: str) -> None:
        conn, lock = await self._async_conn()
        async with lock, conn.transaction(), conn.cursor() as cur:
            for statement in _DELETES:
                await cur.execute(statement, (self.tenant_id, thread_id))

    async def aclose(self) -> None:
        """Close the async connection (call from the loop that used it)."""
        if self._aconn is not None:
            await self._aconn.close()
            self._aconn = None
