"""Business metrics for ``/metrics``, read from the platform database every
``interval_s``: runs by agent and status, the cost of a successful run (from the trace
store's per-run cost), approval wait times. Gauges over a trailing window (24 h), so every
process of a deployment reports the same figures, whichever executed the runs.
"""

from __future__ import annotations

import asyncio

from prometheus_client import Gauge

from roost.observe.logging import get_logger
from roost.observe.metrics import REGISTRY
from roost.storage import Database, now_ms

log = get_logger("roost.observe")
WINDOW_MS = 86_400_000

RUNS = Gauge(
    "roost_runs_24h", "Runs created in the last 24 h, by agent and status",
    ["agent", "status"], registry=REGISTRY,
)  # fmt: skip
RUN_COST = Gauge(
    "roost_run_cost_per_success_usd",
    "Mean cost of a run that succeeded in the last 24 h (model calls in its trace), by agent",
    ["agent"], registry=REGISTRY,
)  # fmt: skip
APPROVAL_WAIT = Gauge(
    "roost_approval_wait_seconds",
    "Time from request to decision of approvals decided in the last 24 h (mean and max)",
    ["stat"], registry=REGISTRY,
)  # fmt: skip
APPROVALS_PENDING = Gauge(
    "roost_approvals_pending", "Tool approvals waiting for a decision", registry=REGISTRY
)


async def refresh(database: Database, *, now: int | None = None) -> None:
    """Read the figures once and set the gauges (series that vanished are removed)."""
    since = (now_ms() if now is None else now) - WINDOW_MS
    runs = await database.fetch_all(
        "SELECT agent, status, COUNT(*) AS n FROM agent_runs WHERE created_at >= :since"
        " GROUP BY agent, status",
        {"since": since},
    )
    RUNS.clear()
    for row in runs:
        RUNS.labels(row["agent"], row["status"]).set(int(row["n"]))
    costs = await database.fetch_all(
        "SELECT r.agent AS agent, COUNT(*) AS n, COALESCE(SUM(t.cost_nano), 0) AS cost"
        " FROM agent_runs r LEFT JOIN trace_summaries t"
        " ON t.tenant_id = r.tenant_id AND t.run_id = r.id"
        " WHERE r.status = 'succeeded' AND r.created_at >= :since GROUP BY r.agent",
        {"since": since},
    )
    RUN_COST.clear()
    for row in costs:
        RUN_COST.labels(row["agent"]).set(int(row["cost"]) / 1e9 / max(1, int(row["n"])))
    waits = await database.fetch_one(
        "SELECT AVG(decided_at - created_at) AS mean, MAX(decided_at - created_at) AS top"
        " FROM tool_approvals WHERE decided_at IS NOT NULL AND decided_at >= :since",
        {"since": since},
    )
    APPROVAL_WAIT.labels("mean").set(float((waits or {}).get("mean") or 0) / 1000)
    APPROVAL_WAIT.labels("max").set(float((waits or {}).get("top") or 0) / 1000)
    pending = await database.fetch_one(
        "SELECT COUNT(*) AS n FROM tool_approvals WHERE status = 'pending'"
    )
    APPROVALS_PENDING.set(int((pending or {}).get("n") or 0))


async def refresh_periodically(database: Database, interval_s: float) -> None:
    while True:
        # Sleep first: at start the kernel is still creating the tables read here.
        await asyncio.sleep(interval_s)
        try:
            await refresh(database)
        except Exception:  # metrics go stale for a round; serving goes on
            log.exception("business metrics not refreshed")
