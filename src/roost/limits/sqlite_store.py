"""The limit store on the SQLite database, for single-host deployments.

Each decision is one ``BEGIN IMMEDIATE`` transaction (the write lock serialises every
process on the file, so two servers never both spend the last token) of a few statements
on a plain :mod:`sqlite3` connection. That connection lives on one thread of its own:
statements take microseconds there, waiting for another process's lock never blocks the
event loop, and there is one hop per decision instead of one per statement.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from roost.errors import StorageUnavailable
from roost.limits.buckets import Bucket, Lease, Mode, Verdict, debited, decide, refill

T = TypeVar("T")


class SqliteLimitStore:
    backend = "sqlite"

    def __init__(self, path: Path, *, busy_timeout_ms: int = 5000) -> None:
        self.path = path
        self.busy_timeout_ms = busy_timeout_ms
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="roost-limits")
        self._conn: sqlite3.Connection | None = None

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            conn = sqlite3.connect(
                self.path, timeout=self.busy_timeout_ms / 1000, isolation_level=None
            )
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            self._conn = conn
        return self._conn

    async def _run(self, work: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, work, *args)
        except sqlite3.Error as exc:
            raise StorageUnavailable(f"the limit store ({self.path}) failed: {exc}") from exc

    async def acquire(
        self, buckets: Sequence[Bucket], leases: Sequence[Lease] = (), mode: Mode = Mode.TAKE
    ) -> Verdict:
        return await self._run(self._acquire, list(buckets), list(leases), mode)

    def _acquire(self, buckets: list[Bucket], leases: list[Lease], mode: Mode) -> Verdict:
        conn = self._connection()
        conn.execute("BEGIN IMMEDIATE")
        try:
            # The clock is read once the write lock is held: a decider that waited for
            # another process must not stamp a bucket with a time older than that process
            # did, or the next decision would count the same refill twice.
            now_s = time.time()
            levels = []
            stamps = []
            for bucket in buckets:
                row = conn.execute(
                    "SELECT level, updated_ms FROM limit_buckets WHERE key = ?", (bucket.key,)
                ).fetchone()
                if row is None:
                    levels.append(refill(None, None, now_s, bucket))
                    stamps.append(now_s)
                else:
                    levels.append(refill(float(row[0]), row[1] / 1000, now_s, bucket))
                    stamps.append(max(now_s, row[1] / 1000))  # time never runs backwards
            now_ms = int(now_s * 1000)
            num_leases = []
            for lease in leases:
                conn.execute(
                    "DELETE FROM limit_leases WHERE key = ? AND expires_ms <= ?",
                    (lease.key, now_ms),
                )
                num_leases.append(
                    conn.execute(
                        "SELECT COUNT(*) FROM limit_leases WHERE key = ?", (lease.key,)
                    ).fetchone()[0]
                )
            verdict = decide(buckets, levels, leases, num_leases, mode)
            if verdict.allowed and mode is not Mode.CHECK:
                conn.executemany(
                    "INSERT INTO limit_buckets (key, level, updated_ms) VALUES (?, ?, ?)"
                    " ON CONFLICT (key) DO UPDATE SET level = excluded.level,"
                    " updated_ms = excluded.updated_ms",
                    [
                        (b.key, debited(b, lvl), int(stamp * 1000))
                        for b, lvl, stamp in zip(buckets, levels, stamps, strict=True)
                        if b.debit or mode is Mode.FORCE
                    ],
                )
                conn.executemany(
                    "INSERT INTO limit_leases (key, id, expires_ms) VALUES (?, ?, ?)",
                    [(x.key, x.lease_id, now_ms + int(x.ttl_s * 1000)) for x in leases],
                )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return verdict

    async def release(self, leases: Sequence[tuple[str, str]]) -> None:
        await self._run(self._release, list(leases))

    def _release(self, leases: list[tuple[str, str]]) -> None:
        self._connection().executemany("DELETE FROM limit_leases WHERE key = ? AND id = ?", leases)

    async def finish(self, buckets: Sequence[Bucket], leases: Sequence[tuple[str, str]]) -> None:
        await self._run(self._finish, list(buckets), list(leases))

    def _finish(self, buckets: list[Bucket], leases: list[tuple[str, str]]) -> None:
        # One hop to the store's thread for both (the round trip that costs here).
        if buckets:
            self._acquire(buckets, [], Mode.FORCE)
        if leases:
            self._release(leases)

    async def reset(self, prefix: str) -> int:
        return await self._run(self._reset, prefix)

    def _reset(self, prefix: str) -> int:
        conn = self._connection()
        pattern = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        conn.execute("BEGIN IMMEDIATE")
        try:
            count = conn.execute(
                "DELETE FROM limit_buckets WHERE key LIKE ? ESCAPE '\\'", (pattern,)
            ).rowcount
            count += conn.execute(
                "DELETE FROM limit_leases WHERE key LIKE ? ESCAPE '\\'", (pattern,)
            ).rowcount
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return int(count)

    async def close(self) -> None:
        def shut() -> None:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

        await asyncio.get_running_loop().run_in_executor(self._executor, shut)
        self._executor.shutdown(wait=True)
