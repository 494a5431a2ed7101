"""The trace store: spans in the platform database (SQLite or PostgreSQL), per tenant.

Spans are appended in batches (:meth:`TraceStore.write`), each batch in one transaction
that also folds it into the per-trace summaries the list query reads. Every query names
a tenant; a trace id alone never finds anything.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from roost.errors import InvalidRequest
from roost.observe.span_record import SpanRecord
from roost.storage import Database, Row

_SPAN_COLUMNS = (
    "tenant_id", "trace_id", "span_id", "parent_span_id", "name", "kind", "start_us",
    "duration_us", "status", "status_message", "operation", "run_id", "thread_id", "agent",
    "model", "input_tokens", "output_tokens", "cached_tokens", "cost_nano", "attributes",
    "events", "size_bytes", "source",
)  # fmt: skip
_SUMMARY_COLUMNS = (
    "tenant_id", "trace_id", "name", "start_us", "end_us", "span_count", "error_count",
    "run_id", "thread_id", "agent", "models", "input_tokens", "output_tokens",
    "cached_tokens", "cost_nano", "size_bytes",
)  # fmt: skip
_ADDED = ("span_count", "error_count", "input_tokens", "output_tokens", "cached_tokens",
          "cost_nano", "size_bytes")  # fmt: skip
# Deleted together, so a trace is never half gone.
_DELETE_CHUNK = 500


def _marks(count: int, paramstyle: str) -> str:
    """Positional placeholders in the driver's style (statements go to the driver as is)."""
    if paramstyle == "qmark":
        return ", ".join("?" * count)
    if paramstyle.endswith("dollar"):
        return ", ".join(f"${i}" for i in range(1, count + 1))
    return ", ".join(["%s"] * count)


def _insert_span(paramstyle: str) -> str:
    return (
        f"INSERT INTO trace_spans ({', '.join(_SPAN_COLUMNS)})"
        f" VALUES ({_marks(len(_SPAN_COLUMNS), paramstyle)})"
        " ON CONFLICT (tenant_id, trace_id, span_id) DO NOTHING"
    )


def _upsert_summary(dialect: str, paramstyle: str) -> str:
    least, greatest = ("MIN", "MAX") if dialect == "sqlite" else ("LEAST", "GREATEST")
    old, new = "trace_summaries", "excluded"
    updates = [
        f"name = CASE WHEN {new}.start_us < {old}.start_us THEN {new}.name ELSE {old}.name END",
        f"start_us = {least}({old}.start_us, {new}.start_us)",
        f"end_us = {greatest}({old}.end_us, {new}.end_us)",
        *(f"{c} = {old}.{c} + {new}.{c}" for c in _ADDED),
        *(f"{c} = COALESCE({old}.{c}, {new}.{c})" for c in ("run_id", "thread_id", "agent")),
        # models is ",a,b,": appended unless already contained, so LIKE '%,a,%' finds it.
        f"models = CASE WHEN {new}.models = '' OR {old}.models LIKE '%' || {new}.models || '%'"
        f" THEN {old}.models ELSE {old}.models || {new}.models END",
    ]
    return (
        f"INSERT INTO trace_summaries ({', '.join(_SUMMARY_COLUMNS)})"
        f" VALUES ({_marks(len(_SUMMARY_COLUMNS), paramstyle)})"
        f" ON CONFLICT (tenant_id, trace_id) DO UPDATE SET {', '.join(updates)}"
    )


@dataclass(frozen=True, slots=True)
class TraceFilter:
    """What ``GET /v1/traces`` may filter on; unset fields do not filter."""

    since_us: int | None = None
    until_us: int | None = None
    run_id: str | None = None
    thread_id: str | None = None
    agent: str | None = None
    model: str | None = None
    status: str | None = None  # "error" (any span failed) or "ok"
    min_latency_ms: float | None = None
    min_cost_usd: float | None = None


@dataclass(frozen=True, slots=True)
class TracePage:
    traces: list[dict[str, Any]]
    next_cursor: str | None


class TraceStore:
    """Appends span batches and answers the trace queries of one database."""

    def __init__(self, database: Database) -> None:
        self.database = database
        paramstyle = database.engine.dialect.paramstyle
        self._insert = _insert_span(paramstyle)
        self._upsert = _upsert_summary(database.dialect, paramstyle)

    async def write(self, records: Sequence[SpanRecord], *, deduplicate: bool = False) -> int:
        """Append ``records`` in one transaction; returns how many were stored.

        ``deduplicate`` skips spans already stored (OTLP clients re-send after timeouts);
        Roost's own spans are unique by construction and skip the check.
        """
        if not records:
            return 0
        async with self.database.transaction() as conn:
            if deduplicate:
                records = await _unseen(conn, records)
                if not records:
                    return 0
            rows = [r.row() for r in records]
            # Driver-level executemany with positional rows: SQLAlchemy's per-row parameter
            # processing was most of the writer's CPU time per span.
            await conn.exec_driver_sql(
                self._insert, [tuple(row[c] for c in _SPAN_COLUMNS) for row in rows]
            )
            await conn.exec_driver_sql(
                self._upsert,
                [tuple(s[c] for c in _SUMMARY_COLUMNS) for s in _summaries(records, rows)],
            )
        return len(records)

    async def list_traces(
        self, tenant_id: str, where: TraceFilter, *, limit: int = 50, cursor: str | None = None
    ) -> TracePage:
        """Traces newest first; ``next_cursor`` continues after the last one."""
        clauses = ["tenant_id = :tenant_id"]
        params: dict[str, Any] = {"tenant_id": tenant_id, "limit": limit + 1}
        for column, value in (
            ("run_id", where.run_id), ("thread_id", where.thread_id), ("agent", where.agent),
        ):  # fmt: skip
            if value is not None:
                clauses.append(f"{column} = :{column}")
                params[column] = value
        if where.since_us is not None:
            clauses.append("start_us >= :since_us")
            params["since_us"] = where.since_us
        if where.until_us is not None:
            clauses.append("start_us < :until_us")
            params["until_us"] = where.until_us
        if where.model is not None:
            clauses.append("models LIKE :model")
            params["model"] = f"%,{where.model},%"
        if where.status == "error":
            clauses.append("error_count > 0")
        elif where.status == "ok":
            clauses.append("error_count = 0")
        if where.min_latency_ms is not None:
            clauses.append("end_us - start_us >= :min_latency_us")
            params["min_latency_us"] = int(where.min_latency_ms * 1000)
        if where.min_cost_usd is not None:
            clauses.append("cost_nano >= :min_cost_nano")
            params["min_cost_nano"] = int(where.min_cost_usd * 1e9)
        if cursor is not None:
            start_us, trace_id = _decode_cursor(cursor)
            clauses.append("(start_us < :c_start OR (start_us = :c_start AND trace_id < :c_trace))")
            params.update(c_start=start_us, c_trace=trace_id)
        rows = await self.database.fetch_all(
            f"SELECT * FROM trace_summaries WHERE {' AND '.join(clauses)}"
            " ORDER BY start_us DESC, trace_id DESC LIMIT :limit",
            params,
        )
        more = len(rows) > limit
        rows = rows[:limit]
        last = rows[-1] if rows else None
        next_cursor = _encode_cursor(last["start_us"], last["trace_id"]) if more and last else None
        return TracePage([summary_json(r) for r in rows], next_cursor)

    async def get_trace(self, tenant_id: str, trace_id: str) -> dict[str, Any] | None:
        """The trace's summary and its spans as a tree; None when the tenant has no such trace."""
        params = {"tenant_id": tenant_id, "trace_id": trace_id.lower()}
        summary = await self.database.fetch_one(
            "SELECT * FROM trace_summaries WHERE tenant_id = :tenant_id AND trace_id = :trace_id",
            params,
        )
        if summary is None:
            return None
        rows = await self.database.fetch_all(
            "SELECT * FROM trace_spans WHERE tenant_id = :tenant_id AND trace_id = :trace_id"
            " ORDER BY start_us, span_id",
            params,
        )
        from roost.observe.span_tree import span_tree

        return {**summary_json(summary), "spans": span_tree(rows)}

    async def bytes_used(self, tenant_id: str) -> int:
        row = await self.database.fetch_one(
            "SELECT COALESCE(SUM(size_bytes), 0) AS n FROM trace_summaries"
            " WHERE tenant_id = :tenant_id",
            {"tenant_id": tenant_id},
        )
        return int(row["n"]) if row else 0

    async def enforce_retention(self, tenant_id: str, *, older_than_us: int, max_bytes: int) -> int:
        """Delete the tenant's traces that ended before ``older_than_us``, then the oldest
        until the rest fit in ``max_bytes``; returns the number of traces deleted."""
        expired = await self.database.fetch_all(
            "SELECT trace_id FROM trace_summaries WHERE tenant_id = :tenant_id"
            " AND end_us < :cutoff",
            {"tenant_id": tenant_id, "cutoff": older_than_us},
        )
        doomed = [r["trace_id"] for r in expired]
        excess = await self.bytes_used(tenant_id) - max_bytes
        if excess > 0:
            oldest = await self.database.fetch_all(
                "SELECT trace_id, size_bytes FROM trace_summaries WHERE tenant_id = :tenant_id"
                " AND end_us >= :cutoff ORDER BY start_us, trace_id",
                {"tenant_id": tenant_id, "cutoff": older_than_us},
            )
            expired_bytes = await self._bytes_of(tenant_id, doomed)
            excess -= expired_bytes
            for row in oldest:
                if excess <= 0:
                    break
                doomed.append(row["trace_id"])
                excess -= int(row["size_bytes"])
        for start in range(0, len(doomed), _DELETE_CHUNK):
            await self._delete(tenant_id, doomed[start : start + _DELETE_CHUNK])
        return len(doomed)

    async def _bytes_of(self, tenant_id: str, trace_ids: list[str]) -> int:
        total = 0
        for start in range(0, len(trace_ids), _DELETE_CHUNK):
            chunk = trace_ids[start : start + _DELETE_CHUNK]
            names, params = _in_list(chunk)
            row = await self.database.fetch_one(
                "SELECT COALESCE(SUM(size_bytes), 0) AS n FROM trace_summaries"
                f" WHERE tenant_id = :tenant_id AND trace_id IN ({names})",
                {"tenant_id": tenant_id, **params},
            )
            total += int(row["n"]) if row else 0
        return total

    async def _delete(self, tenant_id: str, trace_ids: list[str]) -> None:
        names, params = _in_list(trace_ids)
        params["tenant_id"] = tenant_id
        async with self.database.transaction() as conn:
            for table in ("trace_spans", "trace_summaries"):
                await conn.execute(
                    text(
                        f"DELETE FROM {table} WHERE tenant_id = :tenant_id"
                        f" AND trace_id IN ({names})"
                    ),
                    params,
                )


def summary_json(row: Row) -> dict[str, Any]:
    """A ``trace_summaries`` row as the API shows it."""
    models = [m for m in str(row["models"]).split(",") if m]
    return {
        "trace_id": row["trace_id"],
        "name": row["name"],
        "start_time_us": int(row["start_us"]),
        "duration_ms": (int(row["end_us"]) - int(row["start_us"])) / 1000,
        "status": "error" if row["error_count"] else "ok",
        "span_count": int(row["span_count"]),
        "error_count": int(row["error_count"]),
        "run_id": row["run_id"],
        "thread_id": row["thread_id"],
        "agent": row["agent"],
        "models": list(dict.fromkeys(models)),
        "usage": {
            "input_tokens": int(row["input_tokens"]),
            "output_tokens": int(row["output_tokens"]),
            "cache_read_input_tokens": int(row["cached_tokens"]),
        },
        "cost_usd": int(row["cost_nano"]) / 1e9,
        "size_bytes": int(row["size_bytes"]),
    }


def _summaries(records: Sequence[SpanRecord], rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One summary row per (tenant, trace) of the batch, to fold into the stored ones."""
    by_trace: dict[tuple[str, str], dict[str, Any]] = {}
    # Earliest first: the earliest span names the trace and lends it run, thread and agent.
    for record, row in sorted(zip(records, rows, strict=True), key=lambda p: p[0].start_us):
        key = (record.tenant_id, record.trace_id)
        summary = by_trace.get(key)
        if summary is None:
            summary = by_trace[key] = {
                "tenant_id": record.tenant_id, "trace_id": record.trace_id,
                "name": record.name, "start_us": record.start_us, "end_us": 0,
                "run_id": None, "thread_id": None, "agent": None, "models": "",
                **dict.fromkeys(_ADDED, 0),
            }  # fmt: skip
        summary["end_us"] = max(summary["end_us"], record.start_us + record.duration_us)
        summary["span_count"] += 1
        summary["error_count"] += record.status == "error"
        for column in ("run_id", "thread_id", "agent"):
            if summary[column] is None:
                summary[column] = row[column]
        model = row["model"]
        if model and f",{model}," not in summary["models"]:
            summary["models"] = (summary["models"] or ",") + f"{model},"
        for column in ("input_tokens", "output_tokens", "cached_tokens", "cost_nano"):
            summary[column] += row[column] or 0
        summary["size_bytes"] += row["size_bytes"]
    return list(by_trace.values())


async def _unseen(conn: AsyncConnection, records: Sequence[SpanRecord]) -> list[SpanRecord]:
    seen: set[tuple[str, str, str]] = set()
    by_tenant: dict[str, set[str]] = {}
    for r in records:
        by_tenant.setdefault(r.tenant_id, set()).add(r.trace_id)
    for tenant_id, trace_ids in by_tenant.items():
        names, params = _in_list(sorted(trace_ids))
        result = await conn.execute(
            text(
                "SELECT trace_id, span_id FROM trace_spans WHERE tenant_id = :tenant_id"
                f" AND trace_id IN ({names})"
            ),
            {"tenant_id": tenant_id, **params},
        )
        seen.update((tenant_id, t, s) for t, s in result.all())
    fresh: list[SpanRecord] = []
    for r in records:
        key = (r.tenant_id, r.trace_id, r.span_id)
        if key not in seen:
            seen.add(key)  # a span twice in one batch is stored once
            fresh.append(r)
    return fresh


def _in_list(values: Sequence[str]) -> tuple[str, dict[str, Any]]:
    params = {f"v{i}": v for i, v in enumerate(values)}
    return ", ".join(f":v{i}" for i in range(len(values))), params


def _encode_cursor(start_us: int, trace_id: str) -> str:
    return base64.urlsafe_b64encode(f"{start_us}:{trace_id}".encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[int, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        start, _, trace_id = raw.partition(":")
        return int(start), trace_id
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidRequest("cursor is not one this API returned", param="cursor") from exc
