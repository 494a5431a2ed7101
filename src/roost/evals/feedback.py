"""User feedback on runs (``POST /v1/runs/{id}/feedback``): a score in [0, 1] and a
comment, many per run; experiment reports count them per variant."""

from __future__ import annotations

from typing import Any

from roost.evals.experiments import check_feedback
from roost.storage import Database, new_id, now_ms


class FeedbackStore:
    def __init__(self, database: Database) -> None:
        self.database = database

    async def add(
        self, tenant_id: str, run_id: str, score: float, comment: str = ""
    ) -> dict[str, Any]:
        """Record feedback on a run the caller has already been shown to own."""
        check_feedback(score, comment)
        record = {"id": new_id("fb"), "run_id": run_id, "score": score, "comment": comment,
                  "created_at": now_ms()}  # fmt: skip
        await self.database.execute(
            "INSERT INTO run_feedback (id, tenant_id, run_id, score, comment, created_at)"
            " VALUES (:id, :t, :run_id, :score, :comment, :created_at)",
            {**record, "t": tenant_id},
        )
        return {"object": "feedback", **record}

    async def list(self, tenant_id: str, run_id: str) -> list[dict[str, Any]]:
        rows = await self.database.fetch_all(
            "SELECT id, run_id, score, comment, created_at FROM run_feedback"
            " WHERE tenant_id = :t AND run_id = :r ORDER BY created_at",
            {"t": tenant_id, "r": run_id},
        )
        return [{"object": "feedback", **row} for row in rows]
