"""The limit store on the PostgreSQL database, for deployments without Redis.

One transaction per decision: the bucket rows (and the lease scope's row, which stands
for its leases) are created if missing and locked with ``SELECT … FOR UPDATE`` in key
order, so concurrent decisions on one scope queue on the row lock and never deadlock.
Time is the database's clock, shared by every server.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from roost.config import redact_url
from roost.errors import StorageUnavailable
from roost.limits.buckets import Bucket, Lease, Mode, Verdict, debited, decide, refill
from roost.storage import Database


class PostgresLimitStore:
    backend = "postgresql"

    def __init__(self, database: Database) -> None:
        self.database = database

    async def acquire(
        self, buckets: Sequence[Bucket], leases: Sequence[Lease] = (), mode: Mode = Mode.TAKE
    ) -> Verdict:
        try:
            return await self._acquire(list(buckets), list(leases), mode)
        except (OSError, DBAPIError) as exc:
            raise StorageUnavailable(
                f"the limit store (database at {redact_url(self.database.url)}) failed"
            ) from exc

    async def _acquire(self, buckets: list[Bucket], leases: list[Lease], mode: Mode) -> Verdict:
        keys = sorted({b.key for b in buckets} | {lease.key for lease in leases})
        async with self.database.transaction() as conn:
            now_ms = int(
                (
                    await conn.execute(
                        text("SELECT (EXTRACT(EPOCH FROM clock_timestamp()) * 1000)")
                    )
                ).scalar_one()
            )
            now_s = now_ms / 1000
            await conn.execute(
                text(
                    "INSERT INTO limit_buckets (key, level, updated_ms)"
                    " SELECT k, 0, 0 FROM unnest(CAST(:keys AS TEXT[])) AS k"
                    " ON CONFLICT (key) DO NOTHING"
                ),
                {"keys": keys},
            )
            rows = (
                await conn.execute(
                    text(
                        "SELECT key, level, updated_ms FROM limit_buckets"
                        " WHERE key = ANY(CAST(:keys AS TEXT[])) ORDER BY key FOR UPDATE"
                    ),
                    {"keys": keys},
                )
            ).all()
            # updated_ms 0 marks a row made just now as a lock: the bucket is new, hence full.
            stored: dict[str, tuple[float | None, float | None]] = {
                r[0]: (float(r[1]), r[2] / 1000) for r in rows if r[2] > 0
            }
            levels = []
            for bucket in buckets:
                level, updated_s = stored.get(bucket.key, (None, None))
                levels.append(refill(level, updated_s, now_s, bucket))
            num_leases = []
            for lease in leases:
                await conn.execute(
                    text("DELETE FROM limit_leases WHERE key = :k AND expires_ms <= :n"),
                    {"k": lease.key, "n": now_ms},
                )
                count = await conn.execute(
                    text("SELECT COUNT(*) FROM limit_leases WHERE key = :k"), {"k": lease.key}
                )
                num_leases.append(int(count.scalar_one()))
            verdict = decide(buckets, levels, leases, num_leases, mode)
            if verdict.allowed and mode is not Mode.CHECK:
                for bucket, level in zip(buckets, levels, strict=True):
                    if not bucket.debit and mode is not Mode.FORCE:
                        continue
                    await conn.execute(
                        text("UPDATE limit_buckets SET level = :l, updated_ms = :n WHERE key = :k"),
                        {"l": debited(bucket, level), "n": now_ms, "k": bucket.key},
                    )
                for lease in leases:
                    await conn.execute(
                        text("INSERT INTO limit_leases (key, id, expires_ms) VALUES (:k, :i, :e)"),
                        {
                            "k": lease.key,
                            "i": lease.lease_id,
                            "e": now_ms + int(lease.ttl_s * 1000),
                        },
                    )
        return verdict

    async def release(self, leases: Sequence[tuple[str, str]]) -> None:
        try:
            async with self.database.transaction() as conn:
                await conn.execute(
                    text("DELETE FROM limit_leases WHERE key = :k AND id = :i"),
                    [{"k": key, "i": lease_id} for key, lease_id in leases],
                )
        except (OSError, DBAPIError) as exc:
            raise StorageUnavailable("the limit store failed to release a lease") from exc

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
        return None
