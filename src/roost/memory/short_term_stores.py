"""Durable short-term stores: SQL (SQLite or PostgreSQL through roost.storage) and Redis."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence

from sqlalchemy import text

from roost.memory.short_term import Clock, Turn
from roost.storage import Database
from roost.storage.redis import RedisClient


class SqlShortTermStore:
    """Turns in ``memory_turns``; thread TTLs in ``memory_threads`` (memory migrations)."""

    def __init__(self, database: Database, clock: Clock = time.time) -> None:
        self.database = database
        self._clock = clock

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    async def append(
        self, tenant_id: str, thread_id: str, turns: Sequence[Turn], *, ttl_s: float | None
    ) -> list[Turn]:
        now = self._now_ms()
        key = {"t": tenant_id, "th": thread_id}
        expires = None if ttl_s is None else now + int(ttl_s * 1000)
        async with self.database.transaction() as conn:
            await conn.execute(
                text(
                    "INSERT INTO memory_threads (tenant_id, thread_id, next_seq, expires_at,"
                    " updated_at) VALUES (:t, :th, 1, :exp, :now) ON CONFLICT DO NOTHING"
                ),
                {**key, "exp": expires, "now": now},
            )
            lock = " FOR UPDATE" if self.database.dialect == "postgresql" else ""
            row = (
                await conn.execute(
                    text(
                        "SELECT next_seq, expires_at FROM memory_threads"
                        f" WHERE tenant_id = :t AND thread_id = :th{lock}"
                    ),
                    key,
                )
            ).one()
            next_seq = int(row.next_seq)
            if row.expires_at is not None and row.expires_at <= now:
                await conn.execute(
                    text("DELETE FROM memory_turns WHERE tenant_id = :t AND thread_id = :th"), key
                )
                next_seq = 1
            added = [turn.with_seq(next_seq + n) for n, turn in enumerate(turns)]
            if added:
                await conn.execute(
                    text(
                        "INSERT INTO memory_turns (tenant_id, thread_id, seq, id, role, content,"
                        " tokens, pinned, metadata, created_at) VALUES (:t, :th, :seq, :id,"
                        " :role, :content, :tokens, :pinned, :metadata, :created_at)"
                    ),
                    [
                        {
                            **key,
                            "seq": t.seq,
                            "id": t.id,
                            "role": t.role,
                            "content": t.content,
                            "tokens": t.tokens,
                            "pinned": int(t.pinned),
                            "metadata": json.dumps(dict(t.metadata)),
                            "created_at": t.created_at,
                        }
                        for t in added
                    ],
                )
            await conn.execute(
                text(
                    "UPDATE memory_threads SET next_seq = :next, expires_at = :exp,"
                    " updated_at = :now WHERE tenant_id = :t AND thread_id = :th"
                ),
                {**key, "next": next_seq + len(added), "exp": expires, "now": now},
            )
        return added

    async def turns(self, tenant_id: str, thread_id: str) -> list[Turn]:
        rows = await self.database.fetch_all(
            "SELECT u.* FROM memory_turns u JOIN memory_threads h"
            " ON h.tenant_id = u.tenant_id AND h.thread_id = u.thread_id"
            " WHERE u.tenant_id = :t AND u.thread_id = :th"
            " AND (h.expires_at IS NULL OR h.expires_at > :now) ORDER BY u.seq",
            {"t": tenant_id, "th": thread_id, "now": self._now_ms()},
        )
        return [
            Turn(
                id=r["id"],
                role=r["role"],
                content=r["content"],
                tokens=int(r["tokens"]),
                pinned=bool(r["pinned"]),
                seq=int(r["seq"]),
                created_at=int(r["created_at"]),
                metadata=json.loads(r["metadata"]),
            )
            for r in rows
        ]

    async def remove(self, tenant_id: str, thread_id: str, turn_ids: Sequence[str]) -> int:
        removed = 0
        async with self.database.transaction() as conn:
            for turn_id in turn_ids:
                result = await conn.execute(
                    text(
                        "DELETE FROM memory_turns"
                        " WHERE tenant_id = :t AND thread_id = :th AND id = :id"
                    ),
                    {"t": tenant_id, "th": thread_id, "id": turn_id},
                )
                removed += int(result.rowcount or 0)
        return removed

    async def clear(self, tenant_id: str, thread_id: str) -> None:
        async with self.database.transaction() as conn:
            key = {"t": tenant_id, "th": thread_id}
            for table in ("memory_turns", "memory_threads"):
                await conn.execute(
                    text(f"DELETE FROM {table} WHERE tenant_id = :t AND thread_id = :th"), key
                )

    async def threads(self, tenant_id: str) -> list[str]:
        rows = await self.database.fetch_all(
            "SELECT thread_id FROM memory_threads WHERE tenant_id = :t"
            " AND (expires_at IS NULL OR expires_at > :now) ORDER BY thread_id",
            {"t": tenant_id, "now": self._now_ms()},
        )
        return [r["thread_id"] for r in rows]

    async def purge_expired(self) -> int:
        """Delete expired threads and their turns; returns how many threads went."""
        now = self._now_ms()
        async with self.database.transaction() as conn:
            await conn.execute(
                text(
                    "DELETE FROM memory_turns WHERE EXISTS (SELECT 1 FROM memory_threads h"
                    " WHERE h.tenant_id = memory_turns.tenant_id"
                    " AND h.thread_id = memory_turns.thread_id AND h.expires_at <= :now)"
                ),
                {"now": now},
            )
            result = await conn.execute(
                text("DELETE FROM memory_threads WHERE expires_at <= :now"), {"now": now}
            )
            return int(result.rowcount or 0)

    async def close(self) -> None:
        """Nothing to release: the database belongs to the platform."""


class RedisShortTermStore:
    """Turns in one Redis hash per thread, expiring with the thread (native Redis TTLs)."""

    def __init__(self, redis: RedisClient, *, prefix: str = "roost:stm") -> None:
        self.redis = redis
        self.prefix = prefix

    def _keys(self, tenant_id: str, thread_id: str) -> tuple[str, str, str]:
        base = f"{self.prefix}:{tenant_id}:{thread_id}"
        return f"{base}:turns", f"{base}:seq", f"{self.prefix}:{tenant_id}:threads"

    async def append(
        self, tenant_id: str, thread_id: str, turns: Sequence[Turn], *, ttl_s: float | None
    ) -> list[Turn]:
        turns_key, seq_key, threads_key = self._keys(tenant_id, thread_id)
        client = self.redis.client
        last = int(await client.incrby(seq_key, len(turns)))
        added = [turn.with_seq(last - len(turns) + 1 + n) for n, turn in enumerate(turns)]
        async with client.pipeline(transaction=True) as pipe:
            if added:
                pipe.hset(turns_key, mapping={t.id: json.dumps(t.to_json()) for t in added})
            pipe.sadd(threads_key, thread_id)
            for key in (turns_key, seq_key):
                if ttl_s is None:
                    pipe.persist(key)
                else:
                    pipe.pexpire(key, max(1, int(ttl_s * 1000)))
            await pipe.execute()
        return added

    async def turns(self, tenant_id: str, thread_id: str) -> list[Turn]:
        turns_key, _, _ = self._keys(tenant_id, thread_id)
        values = await self.redis.client.hvals(turns_key)
        return sorted((Turn.from_json(json.loads(v)) for v in values), key=lambda t: t.seq)

    async def remove(self, tenant_id: str, thread_id: str, turn_ids: Sequence[str]) -> int:
        if not turn_ids:
            return 0
        turns_key, _, _ = self._keys(tenant_id, thread_id)
        return int(await self.redis.client.hdel(turns_key, *turn_ids))

    async def clear(self, tenant_id: str, thread_id: str) -> None:
        turns_key, seq_key, threads_key = self._keys(tenant_id, thread_id)
        await self.redis.client.delete(turns_key, seq_key)
        await self.redis.client.srem(threads_key, thread_id)

    async def threads(self, tenant_id: str) -> list[str]:
        _, _, threads_key = self._keys(tenant_id, "")
        live: list[str] = []
        for raw in sorted(await self.redis.client.smembers(threads_key)):
            thread_id = raw.decode() if isinstance(raw, bytes) else str(raw)
            if await self.redis.client.exists(self._keys(tenant_id, thread_id)[1]):
                live.append(thread_id)
            else:  # expired: forget it here too
                await self.redis.client.srem(threads_key, thread_id)
        return live

    async def close(self) -> None:
        """Nothing to release: the client belongs to the platform."""
