"""A checkpointer on one SQLite file (stdlib ``sqlite3``, WAL journal).

Sync calls use the connection under a lock; async twins run the same calls on one
dedicated thread so the event loop never blocks on disk.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import sqlite3
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal, TypeVar

from roost.graph.checkpoint import base, sql

T = TypeVar("T")

SQL = sql.statements(
    "?",
    upsert_checkpoint=sql.UPSERT_CHECKPOINT,
    upsert_event=sql.UPSERT_EVENT,
    # the planner prefers the parent index, which scans every checkpoint of the thread
    snapshot_index_hint="INDEXED BY graph_checkpoints_snapshots",
)


class SqliteCheckpointer:
    """Stores threads in a SQLite file. ``synchronous="FULL"`` (default) syncs every commit
    to disk; ``"NORMAL"`` survives process crashes but may lose the last commits on power loss."""

    def __init__(
        self,
        path: str | Path,
        *,
        tenant_id: str = "default",
        synchronous: Literal["FULL", "NORMAL"] = "FULL",
        busy_timeout_ms: int = 5000,
    ) -> None:
        self.tenant_id = tenant_id
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._conn.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute(f"PRAGMA synchronous={'FULL' if synchronous == 'FULL' else 'NORMAL'}")
        self._conn.executescript(sql.schema("BLOB", "REAL", "WITHOUT ROWID"))
        self._lock = threading.Lock()
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None

    # -- sync --------------------------------------------------------------------------
    def put(
        self, checkpoints: Sequence[base.CheckpointRecord], writes: Sequence[base.WriteRecord]
    ) -> None:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                if checkpoints:
                    self._conn.executemany(
                        SQL.put_checkpoint, sql.checkpoint_rows(self.tenant_id, checkpoints)
                    )
                if writes:
                    self._conn.executemany(SQL.put_event, sql.event_rows(self.tenant_id, writes))
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise

    def load(
        self, thread_id: str, ns: str = "", checkpoint_id: str | None = None
    ) -> base.ThreadLog:
        key = (self.tenant_id, thread_id, ns)
        with self._lock:
            if checkpoint_id is None:
                target = self._conn.execute(SQL.head, key).fetchone()
            else:
                target = self._conn.execute(SQL.by_id, (*key, checkpoint_id)).fetchone()
            if target is None:
                return base.ThreadLog([], [], False)
            group = (*key, target[5], target[5])
            rows = self._conn.execute(SQL.group, group).fetchall()
            rows += self._conn.execute(SQL.snapshots, key).fetchall()
            events = self._conn.execute(SQL.group_events, group).fetchall()
        # children of the target are in the slice (same group, or snapshots)
        return sql.to_log(thread_id, ns, rows, events)

    def load_all(self, thread_id: str, ns: str = "") -> base.ThreadLog:
        key = (self.tenant_id, thread_id, ns)
        with self._lock:
            rows = self._conn.execute(SQL.all_checkpoints, key).fetchall()
            events = self._conn.execute(SQL.all_events, key).fetchall()
        return sql.to_log(thread_id, ns, rows, events)

    def list_namespaces(self, thread_id: str) -> list[str]:
        with self._lock:
            rows = self._conn.execute(SQL.namespaces, (self.tenant_id, thread_id)).fetchall()
        return [row[0] for row in rows]

    def delete_thread(self, thread_id: str) -> None:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            for statement in SQL.deletes:
                self._conn.execute(statement, (self.tenant_id, thread_id))
            self._conn.execute("COMMIT")

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None
        with self._lock:
            self._conn.close()

    # -- async twins ------------------------------------------------------------------
    async def _in_thread(self, fn: Callable[..., T], *args: object) -> T:
        if self._executor is None:
            self._executor = concurrent.futures.ThreadPoolExecutor(
                1, thread_name_prefix="roost-sqlite"
            )
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def aput(
        self, checkpoints: Sequence[base.CheckpointRecord], writes: Sequence[base.WriteRecord]
    ) -> None:
        await self._in_thread(self.put, checkpoints, writes)

    async def aload(
        self, thread_id: str, ns: str = "", checkpoint_id: str | None = None
    ) -> base.ThreadLog:
        return await self._in_thread(self.load, thread_id, ns, checkpoint_id)

    async def aload_all(self, thread_id: str, ns: str = "") -> base.ThreadLog:
        return await self._in_thread(self.load_all, thread_id, ns)

    async def alist_namespaces(self, thread_id: str) -> list[str]:
        return await self._in_thread(self.list_namespaces, thread_id)

    async def adelete_thread(self, thread_id: str) -> None:
        await self._in_thread(self.delete_thread, thread_id)
