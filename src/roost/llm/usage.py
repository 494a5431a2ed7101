"""Usage records: one row per model call (tokens, cost, latency, who, which model) and
the per-tenant summaries that ``/v1/usage`` and ``roost usage`` show."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from roost.llm.base import RequestContext, split_model_id
from roost.llm.cost import usd
from roost.llm.messages import Usage
from roost.storage import Database, new_id, now_ms

UsageStatus = Literal["ok", "error", "cancelled"]
CacheResult = Literal["miss", "exact", "semantic", "off"]
GroupBy = Literal["model", "day", "key", "agent"]

_GROUP_COLUMNS: dict[str, str] = {
    "model": "provider || ':' || model",
    "key": "COALESCE(key_id, '-')",
    "agent": "COALESCE(agent_id, '-')",
}


@dataclass(frozen=True, slots=True)
class UsageRecord:
    """What one call used and cost."""

    context: RequestContext
    model_id: str
    usage: Usage
    cost_nano: int
    latency_ms: int
    status: UsageStatus = "ok"
    cache: CacheResult = "miss"
    model_group: str | None = None
    price_version: str | None = None


class UsageStore:
    """Writes usage rows and sums them per tenant."""

    def __init__(self, database: Database) -> None:
        self.database = database

    async def record(self, record: UsageRecord, conn: AsyncConnection | None = None) -> None:
        """Insert one row (pass ``conn`` to join a transaction, e.g. the budget settlement)."""
        provider, model = split_model_id(record.model_id)
        context = record.context
        params = {
            "id": new_id("use"),
            "tenant": context.tenant_id,
            "key": context.key_id,
            "agent": context.agent_id,
            "run": context.run_id,
            "grp": record.model_group,
            "provider": provider,
            "model": model,
            "inp": record.usage.input_tokens,
            "cached": record.usage.cached_input_tokens,
            "out": record.usage.output_tokens,
            "cost": record.cost_nano,
            "latency": record.latency_ms,
            "status": record.status,
            "cache": record.cache,
            "prices": record.price_version,
            "at": now_ms(),
        }
        sql = text(
            "INSERT INTO llm_usage (id, tenant_id, key_id, agent_id, run_id, model_group, provider,"
            " model, input_tokens, cached_input_tokens, output_tokens, cost_nano, latency_ms,"
            " status, cache, price_version, created_at) VALUES (:id, :tenant, :key, :agent, :run,"
            " :grp, :provider, :model, :inp, :cached, :out, :cost, :latency, :status, :cache,"
            " :prices, :at)"
        )
        if conn is not None:
            await conn.execute(sql, params)
        else:
            async with self.database.transaction() as own:
                await own.execute(sql, params)

    async def summary(
        self,
        tenant_id: str,
        *,
        since_ms: int,
        until_ms: int | None = None,
        group_by: GroupBy = "model",
    ) -> dict[str, object]:
        """Totals and per-group rows of one tenant's calls in ``[since_ms, until_ms)``."""
        until_ms = until_ms if until_ms is not None else now_ms() + 1
        # Days are integer buckets turned into dates in Python: date functions differ by backend.
        column = "(created_at / 86400000)" if group_by == "day" else _GROUP_COLUMNS[group_by]
        rows = await self.database.fetch_all(
            f"SELECT {column} AS grp, COUNT(*) AS calls,"
            " SUM(CASE WHEN cache IN ('exact', 'semantic') THEN 1 ELSE 0 END) AS cache_hits,"
            " SUM(CASE WHEN status = 'error' THEN 1 ELSE 0 END) AS errors,"
            " SUM(input_tokens) AS input_tokens, SUM(cached_input_tokens) AS cached_input_tokens,"
            " SUM(output_tokens) AS output_tokens, SUM(cost_nano) AS cost_nano,"
            " AVG(latency_ms) AS avg_latency_ms"
            " FROM llm_usage WHERE tenant_id = :t AND created_at >= :s AND created_at < :u"
            f" GROUP BY {column} ORDER BY SUM(cost_nano) DESC, {column}",
            {"t": tenant_id, "s": since_ms, "u": until_ms},
        )
        out_rows: list[dict[str, object]] = []
        totals = {"calls": 0, "input_tokens": 0, "output_tokens": 0, "cost_nano": 0}
        for row in rows:
            key = row["grp"]
            if group_by == "day":
                key = datetime.fromtimestamp(int(key) * 86_400, UTC).strftime("%Y-%m-%d")
            entry = {
                group_by: str(key),
                "calls": int(row["calls"]),
                "cache_hits": int(row["cache_hits"] or 0),
                "errors": int(row["errors"] or 0),
                "input_tokens": int(row["input_tokens"] or 0),
                "cached_input_tokens": int(row["cached_input_tokens"] or 0),
                "output_tokens": int(row["output_tokens"] or 0),
                "cost_usd": usd(int(row["cost_nano"] or 0)),
                "avg_latency_ms": round(float(row["avg_latency_ms"] or 0), 1),
            }
            out_rows.append(entry)
            for name in ("calls", "input_tokens", "output_tokens"):
                totals[name] += int(entry[name])  # type: ignore[call-overload]
            totals["cost_nano"] += int(row["cost_nano"] or 0)
        return {
            "tenant_id": tenant_id,
            "since_ms": since_ms,
            "until_ms": until_ms,
            "group_by": group_by,
            "total_calls": totals["calls"],
            "total_input_tokens": totals["input_tokens"],
            "total_output_tokens": totals["output_tokens"],
            "total_cost_usd": usd(totals["cost_nano"]),
            "rows": out_rows,
        }
