"""Threads and runs as records: who owns them, what was asked, how it ended.

The conversation itself lives in the graph checkpoints of the thread; these rows are
what the API lists and filters, always within one tenant.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

from roost.errors import NotFound
from roost.storage import Database, Row, new_id, now_ms

RunStatus = Literal["queued", "running", "interrupted", "succeeded", "failed", "cancelled"]
FINISHED: frozenset[str] = frozenset({"succeeded", "failed", "cancelled"})


@dataclass(frozen=True, slots=True)
class ThreadRecord:
    id: str
    tenant_id: str
    metadata: dict[str, Any]
    created_at: int
    updated_at: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "thread",
            "metadata": self.metadata,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


@dataclass(frozen=True, slots=True)
class RunRecord:
    id: str
    tenant_id: str
    thread_id: str
    agent: str
    agent_version: int
    status: str
    input: Any
    output: Any = None
    usage: dict[str, int] = field(default_factory=dict)
    error: str | None = None
    interrupts: list[dict[str, Any]] = field(default_factory=list)
    webhook: str | None = None
    workflow_id: str | None = None
    created_at: int = 0
    updated_at: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "run",
            "thread_id": self.thread_id,
            "agent": self.agent,
            "agent_version": self.agent_version,
            "status": self.status,
            "input": self.input,
            "output": self.output,
            "usage": self.usage,
            "error": self.error,
            "interrupts": self.interrupts,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


def _thread(row: Row) -> ThreadRecord:
    return ThreadRecord(
        str(row["id"]),
        str(row["tenant_id"]),
        json.loads(row["metadata"]),
        int(row["created_at"]),
        int(row["updated_at"]),
    )


def _run(row: Row) -> RunRecord:
    return RunRecord(
        id=str(row["id"]),
        tenant_id=str(row["tenant_id"]),
        thread_id=str(row["thread_id"]),
        agent=str(row["agent"]),
        agent_version=int(row["agent_version"]),
        status=str(row["status"]),
        input=json.loads(row["input"]),
        output=json.loads(row["output"]) if row["output"] is not None else None,
        usage=json.loads(row["usage"]),
        error=row["error"],
        interrupts=json.loads(row["interrupts"]) if row["interrupts"] else [],
        webhook=row["webhook"],
        workflow_id=row["workflow_id"],
        created_at=int(row["created_at"]),
        updated_at=int(row["updated_at"]),
    )


class RunStore:
    """SQL for ``agent_threads`` and ``agent_runs``."""

    def __init__(self, database: Database) -> None:
        self.database = database

    async def create_thread(
        self, tenant_id: str, metadata: dict[str, Any] | None = None, thread_id: str | None = None
    ) -> ThreadRecord:
        now = now_ms()
        record = ThreadRecord(thread_id or new_id("thr"), tenant_id, metadata or {}, now, now)
        await self.database.execute(
            "INSERT INTO agent_threads (id, tenant_id, metadata, created_at, updated_at)"
            " VALUES (:i, :t, :m, :c, :u)",
            {"i": record.id, "t": tenant_id, "m": json.dumps(record.metadata), "c": now, "u": now},
        )
        return record

    async def ensure_thread(self, tenant_id: str, thread_id: str) -> ThreadRecord:
        """The tenant's thread ``thread_id``, made now if it does not exist (race-free)."""
        now = now_ms()
        await self.database.execute(
            "INSERT INTO agent_threads (id, tenant_id, metadata, created_at, updated_at)"
            " VALUES (:i, :t, '{}', :c, :u) ON CONFLICT (tenant_id, id) DO NOTHING",
            {"i": thread_id, "t": tenant_id, "c": now, "u": now},
        )
        return await self.get_thread(tenant_id, thread_id)

    async def get_thread(self, tenant_id: str, thread_id: str) -> ThreadRecord:
        row = await self.database.fetch_one(
            "SELECT * FROM agent_threads WHERE tenant_id = :t AND id = :i",
            {"t": tenant_id, "i": thread_id},
        )
        if row is None:
            raise NotFound(f"no thread {thread_id!r}", param="thread_id")
        return _thread(row)

    async def create_run(self, record: RunRecord) -> RunRecord:
        now = now_ms()
        await self.database.execute(
            "INSERT INTO agent_runs (id, tenant_id, thread_id, agent, agent_version, status,"
            " input, usage, webhook, created_at, updated_at)"
            " VALUES (:i, :t, :th, :a, :v, :s, :in, :us, :w, :c, :u)",
            {
                "i": record.id,
                "t": record.tenant_id,
                "th": record.thread_id,
                "a": record.agent,
                "v": record.agent_version,
                "s": record.status,
                "in": json.dumps(record.input),
                "us": "{}",
                "w": record.webhook,
                "c": now,
                "u": now,
            },
        )
        await self.database.execute(
            "UPDATE agent_threads SET updated_at = :u WHERE id = :i AND tenant_id = :t",
            {"u": now, "i": record.thread_id, "t": record.tenant_id},
        )
        return await self.get_run(record.tenant_id, record.id)

    async def get_run(self, tenant_id: str, run_id: str) -> RunRecord:
        row = await self.database.fetch_one(
            "SELECT * FROM agent_runs WHERE tenant_id = :t AND id = :i",
            {"t": tenant_id, "i": run_id},
        )
        if row is None:
            raise NotFound(f"no run {run_id!r}", param="run_id")
        return _run(row)

    async def find_run(self, run_id: str) -> RunRecord:
        """A run by id alone: for the worker side, which learns the tenant from the run."""
        row = await self.database.fetch_one("SELECT * FROM agent_runs WHERE id = :i", {"i": run_id})
        if row is None:
            raise NotFound(f"no run {run_id!r}", param="run_id")
        return _run(row)

    async def has_unfinished_runs(self) -> bool:
        """Whether any run (of any tenant) is queued or running: work to recover at start."""
        row = await self.database.fetch_one(
            "SELECT 1 AS found FROM agent_runs WHERE status IN ('queued', 'running') LIMIT 1"
        )
        return row is not None

    async def cancelled_among(self, run_ids: list[str]) -> set[str]:
        """Which of ``run_ids`` (runs this process executes) were cancelled meanwhile."""
        if not run_ids:
            return set()
        names = {f"r{n}": run_id for n, run_id in enumerate(run_ids)}
        rows = await self.database.fetch_all(
            f"SELECT id FROM agent_runs WHERE status = 'cancelled'"
            f" AND id IN ({', '.join(':' + name for name in names)})",
            names,
        )
        return {str(row["id"]) for row in rows}

    async def list_runs(self, tenant_id: str, thread_id: str, limit: int = 100) -> list[RunRecord]:
        rows = await self.database.fetch_all(
            "SELECT * FROM agent_runs WHERE tenant_id = :t AND thread_id = :th"
            " ORDER BY created_at DESC, id DESC LIMIT :n",
            {"t": tenant_id, "th": thread_id, "n": limit},
        )
        return [_run(row) for row in rows]

    async def list_tenant_runs(
        self,
        tenant_id: str,
        *,
        status: str | None = None,
        agent: str | None = None,
        before: tuple[int, str] | None = None,
        limit: int = 50,
    ) -> list[RunRecord]:
        """The tenant's runs across its threads, newest first, optionally of one status or
        agent; ``before`` (created_at, id) of the last row seen continues a listing."""
        where = ["tenant_id = :t"]
        params: dict[str, Any] = {"t": tenant_id, "n": limit}
        if status is not None:
            where.append("status = :s")
            params["s"] = status
        if agent is not None:
            where.append("agent = :a")
            params["a"] = agent
        if before is not None:
            where.append("(created_at < :bc OR (created_at = :bc AND id < :bi))")
            params["bc"], params["bi"] = before
        rows = await self.database.fetch_all(
            f"SELECT * FROM agent_runs WHERE {' AND '.join(where)}"
            " ORDER BY created_at DESC, id DESC LIMIT :n",
            params,
        )
        return [_run(row) for row in rows]

    async def update_run(
        self,
        run_id: str,
        *,
        status: str,
        only_if: tuple[str, ...] | None = None,
        **values: Any,
    ) -> bool:
        """Set status (and output/usage/error/interrupts/workflow_id); returns whether it changed.
        ``only_if`` guards the transition (a cancelled run never becomes succeeded)."""
        sets = ["status = :s", "updated_at = :u"]
        params: dict[str, Any] = {"s": status, "u": now_ms(), "i": run_id}
        for key in ("output", "usage", "interrupts"):
            if key in values:
                sets.append(f"{key} = :{key}")
                params[key] = json.dumps(values[key])
        for key in ("error", "workflow_id"):
            if key in values:
                sets.append(f"{key} = :{key}")
                params[key] = values[key]
        where = "id = :i"
        if only_if:
            names = [f":o{n}" for n in range(len(only_if))]
            where += f" AND status IN ({', '.join(names)})"
            params.update({f"o{n}": s for n, s in enumerate(only_if)})
        return (
            await self.database.execute(
                f"UPDATE agent_runs SET {', '.join(sets)} WHERE {where}", params
            )
            > 0
        )
