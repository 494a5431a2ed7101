"""A checkpointer on one SQLite file (stdlib ``sqlite3``, WAL journal).

Sync calls use the connection under a lock; async twins run the same calls on one
dedicated thread so the event loop never blocks on disk.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import sqlite3
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal, TypeVar

from roost.graph.checkpoint.base import CheckpointRecord, ThreadLog, WriteRecord

T = TypeVar("T")

SCHEMA = """
CREATE TABLE IF NOT EXISTS graph_checkpoints (
    tenant_id TEXT NOT NULL, thread_id TEXT NOT NULL, ns TEXT NOT NULL,
    checkpoint_id TEXT NOT NULL, parent_id TEXT, step INTEGER NOT NULL,
    source TEXT NOT NULL, created_at REAL NOT NULL, metadata TEXT NOT NULL, snapshot BLOB,
    PRIMARY KEY (tenant_id, thread_id, ns, checkpoint_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS graph_events (
    tenant_id TEXT NOT NULL, thread_id TEXT NOT NULL, ns TEXT NOT NULL,
    checkpoint_id TEXT NOT NULL, task_id TEXT NOT NULL, kind TEXT NOT NULL,
    idx INTEGER NOT NULL, node TEXT NOT NULL, payload BLOB NOT NULL, created_at REAL NOT NULL,
    PRIMARY KEY (tenant_id, thread_id, ns, checkpoint_id, task_id, kind)
) WITHOUT ROWID;
"""


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
        self._conn.executescript(SCHEMA)
        self._lock = threading.Lock()
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None

    # -- sync --------------------------------------------------------------------------
    def put(self, checkpoints: Sequence[CheckpointRecord], writes: Sequence[WriteRecord]) -> None:
        t = self.tenant_id
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                if checkpoints:
                    self._conn.executemany(
                        "INSERT OR REPLACE INTO graph_checkpoints VALUES (?,?,?,?,?,?,?,?,?,?)",
                        [
                            (
                                t,
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
                        ],
                    )
                if writes:
                    self._conn.executemany(
                        "INSERT OR REPLACE INTO graph_events VALUES (?,?,?,?,?,?,?,?,?,?)",
                        [
                            (
                                t,
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
                        ],
                    )
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise

    def load(self, thread_id: str, ns: str = "") -> ThreadLog:
        key = (self.tenant_id, thread_id, ns)
        with self._lock:
            rows = self._conn.execute(
                "SELECT checkpoint_id, parent_id, step, source, created_at, metadata, snapshot "
                "FROM graph_checkpoints WHERE tenant_id=? AND thread_id=? AND ns=? "
                "ORDER BY checkpoint_id",
                key,
            ).fetchall()
            events = self._conn.execute(
                "SELECT checkpoint_id, task_id, kind, idx, node, payload, created_at "
                "FROM graph_events WHERE tenant_id=? AND thread_id=? AND ns=?",
                key,
            ).fetchall()
        return ThreadLog(
            checkpoints=[
                CheckpointRecord(
                    thread_id, ns, r[0], r[1], r[2], r[3], r[4], r[6], json.loads(r[5])
                )
                for r in rows
            ],
            writes=[WriteRecord(thread_id, ns, *e) for e in events],
        )

    def list_namespaces(self, thread_id: str) -> list[str]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT DISTINCT ns FROM graph_checkpoints WHERE tenant_id=? AND thread_id=? "
                "ORDER BY ns",
                (self.tenant_id, thread_id),
            ).fetchall()
        return [row[0] for row in rows]

    def delete_thread(self, thread_id: str) -> None:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            for table in ("graph_checkpoints", "graph_events"):
                self._conn.execute(
                    f"DELETE FROM {table} WHERE tenant_id=? AND thread_id=?",
                    (self.tenant_id, thread_id),
                )
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
        self, checkpoints: Sequence[CheckpointRecord], writes: Sequence[WriteRecord]
    ) -> None:
        await self._in_thread(self.put, checkpoints, writes)

    async def aload(self, thread_id: str, ns: str = "") -> ThreadLog:
        return await self._in_thread(self.load, thread_id, ns)

    async def alist_namespaces(self, thread_id: str) -> list[str]:
        return await self._in_thread(self.list_namespaces, thread_id)

    async def adelete_thread(self, thread_id: str) -> None:
        await self._in_thread(self.delete_thread, thread_id)
