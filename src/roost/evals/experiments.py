"""Online experiments: an agent's threads split between variants (a prompt version or a
model), deterministically by a hash of the thread id with configured weights.

While an experiment is active, every run of its agent starts with its thread's variant
(:mod:`roost.agents.run_setup`) and is recorded here with the model it used. The report
joins those runs with their outcome (success, latency from queueing to settling, cost of
their tokens) and their users' feedback, per variant, with confidence intervals and
significance tests (:mod:`roost.evals.stats`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from roost.agents.run_setup import Variant
from roost.errors import Conflict, InvalidRequest, NotFound
from roost.evals import stats
from roost.evals.datasets import NAME_PATTERN
from roost.observe.logging import get_logger
from roost.prompts.store import PromptRef
from roost.storage import Database, Row, now_ms

log = get_logger("roost.evals")
CostOf = Callable[[str, Mapping[str, int]], float]  # (model, run usage) -> USD
_BUCKETS = 2**64


class VariantSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,31}$")
    weight: float = Field(1.0, gt=0)
    prompt: str | None = Field(None, description="name@label or name@version")
    model: str | None = None

    @model_validator(mode="after")
    def _changes_something(self) -> VariantSpec:
        if self.prompt is None and self.model is None:
            raise ValueError(f"variant {self.name!r} sets neither prompt nor model")
        if self.prompt is not None:
            PromptRef.parse(self.prompt)
        return self


class ExperimentSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=NAME_PATTERN)
    agent: str = Field(min_length=1, max_length=64)
    variants: list[VariantSpec] = Field(min_length=2, max_length=16)

    @model_validator(mode="after")
    def _distinct(self) -> ExperimentSpec:
        names = [v.name for v in self.variants]
        if len(set(names)) != len(names):
            raise ValueError("variant names must be distinct")
        return self


def assign(experiment: str, thread_id: str, variants: list[VariantSpec]) -> VariantSpec:
    """The thread's variant: a stable hash of (experiment, thread) placed on the weights."""
    digest = hashlib.sha256(f"{experiment}\x00{thread_id}".encode()).digest()
    point = int.from_bytes(digest[:8], "big") / _BUCKETS
    total = sum(v.weight for v in variants)
    edge = 0.0
    for variant in variants:
        edge += variant.weight / total
        if point < edge:
            return variant
    return variants[-1]


class ExperimentService:
    """Experiments per tenant; also the run service's variant picker."""

    def __init__(self, database: Database, cost_of: CostOf | None = None) -> None:
        self.database = database
        self.cost_of = cost_of

    async def create(self, tenant_id: str, spec: ExperimentSpec) -> dict[str, Any]:
        """Start an experiment; one active experiment per agent (409 otherwise)."""
        active = await self.database.fetch_one(
            "SELECT name FROM experiments WHERE tenant_id = :t AND agent = :a"
            " AND status = 'active'",
            {"t": tenant_id, "a": spec.agent},
        )
        if active is not None:
            raise Conflict(
                f"experiment {active['name']!r} already runs on agent {spec.agent!r}; stop it"
                " first",
                param="agent",
            )
        try:
            await self.database.execute(
                "INSERT INTO experiments (tenant_id, name, agent, variants, status, created_at)"
                " VALUES (:t, :n, :a, :v, 'active', :c)",
                {"t": tenant_id, "n": spec.name, "a": spec.agent,
                 "v": json.dumps([v.model_dump(exclude_none=True) for v in spec.variants]),
                 "c": now_ms()},
            )  # fmt: skip
        except Exception as exc:  # the unique violation's type differs by driver
            if "unique" in str(exc).lower() or "duplicate" in str(exc).lower():
                raise Conflict(f"experiment {spec.name!r} exists", param="name") from exc
            raise
        return await self.get(tenant_id, spec.name)

    async def get(self, tenant_id: str, name: str) -> dict[str, Any]:
        return _experiment(await self._row(tenant_id, name))

    async def list(self, tenant_id: str) -> list[dict[str, Any]]:
        rows = await self.database.fetch_all(
            "SELECT * FROM experiments WHERE tenant_id = :t ORDER BY created_at DESC",
            {"t": tenant_id},
        )
        return [_experiment(r) for r in rows]

    async def stop(self, tenant_id: str, name: str) -> dict[str, Any]:
        await self._row(tenant_id, name)
        await self.database.execute(
            "UPDATE experiments SET status = 'stopped' WHERE tenant_id = :t AND name = :n",
            {"t": tenant_id, "n": name},
        )
        return await self.get(tenant_id, name)

    # -- VariantPicker ----------------------------------------------------------------
    async def assign(self, tenant_id: str, agent: str, thread_id: str) -> Variant | None:
        row = await self.database.fetch_one(
            "SELECT * FROM experiments WHERE tenant_id = :t AND agent = :a AND status = 'active'",
            {"t": tenant_id, "a": agent},
        )
        if row is None:
            return None
        variants = [VariantSpec.model_validate(v) for v in json.loads(row["variants"])]
        chosen = assign(str(row["name"]), thread_id, variants)
        return Variant(str(row["name"]), chosen.name, chosen.prompt, chosen.model)

    async def record(
        self, tenant_id: str, variant: Variant, run_id: str, thread_id: str, model: str
    ) -> None:
        await self.database.execute(
            "INSERT INTO experiment_runs (run_id, tenant_id, experiment, variant, thread_id,"
            " model, created_at) VALUES (:r, :t, :e, :v, :th, :m, :c)",
            {"r": run_id, "t": tenant_id, "e": variant.experiment, "v": variant.name,
             "th": thread_id, "m": model, "c": now_ms()},
        )  # fmt: skip

    # -- the report -------------------------------------------------------------------
    async def report(self, tenant_id: str, name: str) -> dict[str, Any]:
        """Per variant: runs, success rate, latency, cost, feedback; and whether the
        variants differ (p-values). Runs still in flight count only as ``in_flight``."""
        experiment = await self.get(tenant_id, name)
        rows = await self.database.fetch_all(
            "SELECT e.variant, e.model, e.run_id, r.status, r.usage, r.created_at,"
            " r.updated_at FROM experiment_runs e JOIN agent_runs r ON r.id = e.run_id"
            " AND r.tenant_id = e.tenant_id WHERE e.tenant_id = :t AND e.experiment = :n",
            {"t": tenant_id, "n": name},
        )
        feedback = await self.database.fetch_all(
            "SELECT f.run_id, f.score FROM run_feedback f JOIN experiment_runs e"
            " ON e.run_id = f.run_id AND e.tenant_id = f.tenant_id"
            " WHERE f.tenant_id = :t AND e.experiment = :n",
            {"t": tenant_id, "n": name},
        )
        scores: dict[str, list[float]] = {}
        for item in feedback:
            scores.setdefault(str(item["run_id"]), []).append(float(item["score"]))
        names = [v["name"] for v in experiment["variants"]]
        groups = {n: _Group() for n in names}
        for row in rows:
            group = groups.setdefault(str(row["variant"]), _Group())
            group.add(row, scores.get(str(row["run_id"]), []), self.cost_of)
        variants = [{"name": n, **groups[n].report()} for n in groups]
        ordered = [groups[n] for n in groups]
        experiment["variants_report"] = variants
        experiment["significance"] = {
            "success": stats.compare_rates([(g.successes, g.settled) for g in ordered]),
            "latency_ms": stats.compare_means([g.latencies for g in ordered]),
            "cost_usd": stats.compare_means([g.costs for g in ordered]),
            "feedback": stats.compare_rates([(g.liked, len(g.feedback)) for g in ordered]),
        }
        return experiment

    async def _row(self, tenant_id: str, name: str) -> Row:
        row = await self.database.fetch_one(
            "SELECT * FROM experiments WHERE tenant_id = :t AND name = :n",
            {"t": tenant_id, "n": name},
        )
        if row is None:
            raise NotFound(f"no experiment {name!r}", param="experiment")
        return row


class _Group:
    """One variant's runs, folded for the report."""

    def __init__(self) -> None:
        self.settled = 0
        self.successes = 0
        self.in_flight = 0
        self.latencies: list[float] = []
        self.costs: list[float] = []
        self.feedback: list[float] = []
        self.models: set[str] = set()

    @property
    def liked(self) -> int:
        return sum(1 for s in self.feedback if s >= 0.5)

    def add(self, row: Row, scores: list[float], cost_of: CostOf | None) -> None:
        self.models.add(str(row["model"]))
        self.feedback.extend(scores)
        if row["status"] not in ("succeeded", "failed", "cancelled"):
            self.in_flight += 1
            return
        self.settled += 1
        self.successes += row["status"] == "succeeded"
        self.latencies.append(float(row["updated_at"] - row["created_at"]))
        if cost_of is not None:
            usage = json.loads(row["usage"] or "{}")
            try:
                self.costs.append(cost_of(str(row["model"]), usage))
            except Exception as exc:  # a model no longer configured: its cost is unknown
                log.warning("experiment run not priced", model=row["model"], error=str(exc))

    def report(self) -> dict[str, Any]:
        return {
            "models": sorted(self.models),
            "runs": self.settled,
            "in_flight": self.in_flight,
            "success": stats.rate(self.successes, self.settled),
            "latency_ms": stats.mean(self.latencies),
            "cost_usd": stats.mean(self.costs),
            "feedback": {
                **stats.rate(self.liked, len(self.feedback)),
                "mean_score": stats.mean(self.feedback)["mean"],
            },
        }


def check_feedback(score: float, comment: str) -> None:
    if not 0.0 <= score <= 1.0:
        raise InvalidRequest("score is between 0 (bad) and 1 (good)", param="score")
    if len(comment) > 4000:
        raise InvalidRequest("a comment is at most 4000 characters", param="comment")


def _experiment(row: Row) -> dict[str, Any]:
    return {
        "object": "experiment",
        "name": row["name"],
        "agent": row["agent"],
        "variants": json.loads(row["variants"]),
        "status": row["status"],
        "created_at": int(row["created_at"]),
    }
