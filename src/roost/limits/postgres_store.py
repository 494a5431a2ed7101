"""The limit store on the PostgreSQL database, for deployments without Redis.

One decision is one statement: ``SELECT * FROM roost_limit_acquire(…)``, a stored function
(limits/schema.py) that locks the rows it touches in key order, reads the database's clock
after the locks are held, decides and debits, all inside the statement's own transaction.
It runs on a small asyncpg pool of the store's own: no SQLAlchemy layer, no pre-ping and no
BEGIN/COMMIT round trips on the hot path (the same work through a SQLAlchemy transaction
of several statements cost ~25 ms per model call on a loaded machine).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url

from roost.config import redact_url
from roost.errors import StorageUnavailable
from roost.limits.buckets import CONCURRENCY_RETRY_S, Bucket, Lease, Mode, Verdict
from roost.storage import Database

_MODES = {Mode.TAKE: 0, Mode.CHECK: 1, Mode.FORCE: 2}
_ACQUIRE = (
    "SELECT refused, wait_ms FROM roost_limit_acquire("
    "$1::text[], $2::float8[], $3::float8[], $4::float8[], $5::boolean[],"
    " $6::text[], $7::int[], $8::text[], $9::bigint[], $10::int)"
)
# The end of a request: the leases go and the token corrections are debited, one statement.
_FINISH = (
    "WITH gone AS (DELETE FROM limit_leases WHERE (key, id) IN"
    " (SELECT * FROM unnest($11::text[], $12::text[])) RETURNING 1)"
    " SELECT refused FROM roost_limit_acquire("
    "$1::text[], $2::float8[], $3::float8[], $4::float8[], $5::boolean[],"
    " $6::text[], $7::int[], $8::text[], $9::bigint[], $10::int) AS f, (SELECT count(*) FROM gone) AS g"
)
_RELEASE = (
    "DELETE FROM limit_leases WHERE (key, id) IN (SELECT * FROM unnest($1::text[], $2::text[]))"
)
_FAILURES = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, asyncio.TimeoutError)


def asyncpg_dsn(url: str) -> str:
    """The SQLAlchemy URL of the database as a plain libpq DSN asyncpg accepts."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _bucket_args(buckets: Sequence[Bucket]) -> tuple[list[Any], ...]:
    return (
        [b.key for b in buckets],
        [float(b.capacity) for b in buckets],
        [b.per_second / 1000 for b in buckets],
        [float(b.cost) for b in buckets],
        [b.debit for b in buckets],
    )


class PostgresLimitStore:
    backend = "postgresql"

    def __init__(self, database: Database, *, pool_size: int = 4, timeout_s: float = 10) -> None:
        self.database = database
        self.pool_size = pool_size
        self.timeout_s = timeout_s
        self._pool: asyncpg.Pool[Any] | None = None
        self._opening = asyncio.Lock()

    async def _connection_pool(self) -> asyncpg.Pool[Any]:
        if self._pool is None:
            async with self._opening:
                if self._pool is None:
                    self._pool = await asyncpg.create_pool(
                        asyncpg_dsn(self.database.url),
                        min_size=1,
                        max_size=self.pool_size,
                        timeout=self.timeout_s,
                        command_timeout=self.timeout_s,
                        # Bucket levels are short-lived counters: a commit need not wait for
                        # the WAL flush (a crash loses at most the last moments of counting,
                        # as Redis without fsync would). Per session: nothing else changes.
                        server_settings={"synchronous_commit": "off"},
                    )
        return self._pool

    def _unavailable(self, exc: BaseException) -> StorageUnavailable:
        return StorageUnavailable(
            f"the limit store (database at {redact_url(self.database.url)}) failed: {exc}"
        )

    async def acquire(
        self, buckets: Sequence[Bucket], leases: Sequence[Lease] = (), mode: Mode = Mode.TAKE
    ) -> Verdict:
        args = (
            *_bucket_args(buckets),
            [x.key for x in leases],
            [x.limit for x in leases],
            [x.lease_id for x in leases],
            [math.ceil(x.ttl_s * 1000) for x in leases],
            _MODES[mode],
        )
        try:
            pool = await self._connection_pool()
            row = await pool.fetchrow(_ACQUIRE, *args)
        except _FAILURES as exc:
            raise self._unavailable(exc) from exc
        assert row is not None
        refused, wait_ms = int(row[0]), float(row[1])
        if refused == 0:
            return Verdict(True)
        if refused > len(buckets):
            return Verdict(False, leases[refused - len(buckets) - 1].name, CONCURRENCY_RETRY_S)
        return Verdict(False, buckets[refused - 1].name, wait_ms / 1000)

    async def finish(self, buckets: Sequence[Bucket], leases: Sequence[tuple[str, str]]) -> None:
        if not buckets:
            return await self.release(leases)
        args = (*_bucket_args(buckets), [], [], [], [], _MODES[Mode.FORCE])
        try:
            pool = await self._connection_pool()
            await pool.fetchrow(_FINISH, *args, [k for k, _ in leases], [i for _, i in leases])
        except _FAILURES as exc:
            raise self._unavailable(exc) from exc

    async def release(self, leases: Sequence[tuple[str, str]]) -> None:
        if not leases:
            return
        try:
            pool = await self._connection_pool()
            await pool.execute(_RELEASE, [k for k, _ in leases], [i for _, i in leases])
        except _FAILURES as exc:
            raise self._unavailable(exc) from exc

    async def reset(self, prefix: str) -> int:
        pattern = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        count = await self.database.execute(
            "DELETE FROM limit_buckets WHERE key LIKE :p", {"p": pattern}
        )
        count += await self.database.execute(
            "DELETE FROM limit_leases WHERE key LIKE :p", {"p": pattern}
        )
        return count

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()
