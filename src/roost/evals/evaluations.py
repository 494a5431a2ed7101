"""Evaluation runs: an agent (or a prompt + model) over a dataset version, every item a
durable agent run, every output scored.

An evaluation is a row (``eval_runs``) and one result row per item (``eval_results``)
that records the item's run id as soon as it is queued. The items' runs are ordinary
durable runs: they survive restarts and execute on any worker. The loop that starts
and scores them lives in the process that started the evaluation; if that process
stops, :meth:`EvalService.resume_unfinished` picks the evaluation up at the next start
(waiting on runs already queued, starting only the items that have none).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import text

from roost.agents.catalog import AgentCatalog
from roost.agents.service import AgentRunService
from roost.config import EvalSettings
from roost.errors import InvalidRequest, NotFound, RequestTimeout
from roost.evals import stats
from roost.evals.datasets import DatasetItem, DatasetStore
from roost.evals.scorers import Judge, Score, ScorerSpec, parse_scorer, score
from roost.observe.logging import get_logger
from roost.prompts.store import PromptRef
from roost.storage import Database, Row, new_id, now_ms

log = get_logger("roost.evals")
RUN_TIMEOUT_S = 600.0
JudgeFor = Any  # (tenant_id) -> Judge


class EvalTarget(BaseModel):
    """What an evaluation runs: an agent version, or a managed prompt with a model."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    agent: str | None = None
    version: int | str | None = Field(None, description="Agent version number or tag")
    prompt: str | None = Field(None, description="name@label or name@version")
    model: str | None = None

    @model_validator(mode="after")
    def _one_target(self) -> EvalTarget:
        if (self.agent is None) == (self.prompt is None):
            raise ValueError("name either an agent or a prompt (with a model)")
        if self.prompt is not None:
            PromptRef.parse(self.prompt)
            if self.model is None:
                raise ValueError("a prompt is evaluated with a model: give model")
        return self


@dataclass(frozen=True, slots=True)
class _Job:
    eval_id: str
    tenant_id: str
    items: tuple[DatasetItem, ...]
    agent: str
    version: int | str | None
    scorer: ScorerSpec


class EvalService:
    """Start, follow and report evaluations, per tenant."""

    def __init__(
        self,
        database: Database,
        datasets: DatasetStore,
        runs: AgentRunService,
        catalog: AgentCatalog,
        judge_for: JudgeFor,
        settings: EvalSettings,
    ) -> None:
        self.database = database
        self.datasets = datasets
        self.runs = runs
        self.catalog = catalog
        self.judge_for = judge_for
        self.settings = settings
        self._tasks: dict[str, asyncio.Task[None]] = {}

    async def start(
        self,
        tenant_id: str,
        dataset: str,
        target: EvalTarget,
        scorer: Any = None,
        *,
        dataset_version: int | None = None,
    ) -> dict[str, Any]:
        """Check everything, record the evaluation and start its loop; returns its record."""
        spec = parse_scorer(scorer, self.settings.python_scorers)
        found = await self.datasets.get(tenant_id, dataset, dataset_version)
        if not found.items:
            raise InvalidRequest(f"dataset {dataset!r} has no items", param="dataset")
        agent, version = await self._agent_for(tenant_id, target)
        eval_id = new_id("eval")
        now = now_ms()
        target_json = {**target.model_dump(exclude_none=True), "run_agent": agent,
                       "run_version": version}  # fmt: skip
        await self.database.execute(
            "INSERT INTO eval_runs (id, tenant_id, dataset, dataset_version, target, scorer,"
            " status, item_count, created_at, updated_at)"
            " VALUES (:i, :t, :d, :v, :g, :s, 'running', :n, :c, :c)",
            {"i": eval_id, "t": tenant_id, "d": found.name, "v": found.version,
             "g": json.dumps(target_json), "s": json.dumps(spec.model_dump(by_alias=True)),
             "n": len(found.items), "c": now},
        )  # fmt: skip
        self._launch(_Job(eval_id, tenant_id, found.items, agent, version, spec))
        return await self.get(tenant_id, eval_id, results=False)

    async def get(self, tenant_id: str, eval_id: str, *, results: bool = True) -> dict[str, Any]:
        row = await self.database.fetch_one(
            "SELECT * FROM eval_runs WHERE id = :i AND tenant_id = :t",
            {"i": eval_id, "t": tenant_id},
        )
        if row is None:
            raise NotFound(f"no evaluation {eval_id!r}", param="eval_id")
        body = _eval_dict(row)
        done = await self.database.fetch_all(
            "SELECT * FROM eval_results WHERE eval_id = :i ORDER BY position", {"i": eval_id}
        )
        body["completed"] = sum(1 for r in done if r["status"] != "running")
        if results:
            body["results"] = [_result_dict(r) for r in done]
        return body

    async def list(self, tenant_id: str, limit: int = 50) -> list[dict[str, Any]]:
        rows = await self.database.fetch_all(
            "SELECT * FROM eval_runs WHERE tenant_id = :t ORDER BY created_at DESC LIMIT :n",
            {"t": tenant_id, "n": limit},
        )
        return [_eval_dict(r) for r in rows]

    async def wait(self, tenant_id: str, eval_id: str, timeout_s: float) -> dict[str, Any]:
        """The evaluation once finished (its loop runs in this process)."""
        await self.get(tenant_id, eval_id, results=False)
        task = self._tasks.get(eval_id)
        if task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(task), timeout_s)
            except TimeoutError:
                raise RequestTimeout(
                    f"evaluation {eval_id!r} is still running; GET /v1/evals/{eval_id}"
                ) from None
        return await self.get(tenant_id, eval_id)

    async def resume_unfinished(self) -> int:
        """Restart the loops of evaluations left running by a stopped process."""
        rows = await self.database.fetch_all("SELECT * FROM eval_runs WHERE status = 'running'")
        resumed = 0
        for row in rows:
            if row["id"] in self._tasks:
                continue
            target = json.loads(row["target"])
            try:
                found = await self.datasets.get(
                    row["tenant_id"], row["dataset"], int(row["dataset_version"])
                )
                spec = parse_scorer(json.loads(row["scorer"]), self.settings.python_scorers)
            except Exception as exc:
                await self._finish(row["id"], "failed", None, f"cannot resume: {exc}")
                continue
            self._launch(_Job(row["id"], row["tenant_id"], found.items, target["run_agent"],
                              target["run_version"], spec))  # fmt: skip
            resumed += 1
        return resumed

    async def close(self) -> None:
        for task in self._tasks.values():
            task.cancel()
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)
        self._tasks.clear()

    # -- the loop -------------------------------------------------------------------------
    def _launch(self, job: _Job) -> None:
        task = asyncio.ensure_future(self._execute(job))
        self._tasks[job.eval_id] = task
        task.add_done_callback(lambda _: self._tasks.pop(job.eval_id, None))

    async def _execute(self, job: _Job) -> None:
        limit = asyncio.Semaphore(self.settings.concurrency)
        judge = self.judge_for(job.tenant_id)

        async def one(position: int, item: DatasetItem) -> None:
            async with limit:
                await self._item(job, position, item, judge)

        try:
            await asyncio.gather(*(one(p, item) for p, item in enumerate(job.items)))
            rows = await self.database.fetch_all(
                "SELECT * FROM eval_results WHERE eval_id = :i", {"i": job.eval_id}
            )
            await self._finish(job.eval_id, "succeeded", summarize(rows), None)
        except asyncio.CancelledError:
            raise  # shutting down: resume_unfinished continues it at the next start
        except Exception as exc:
            log.exception("evaluation failed", eval_id=job.eval_id)
            await self._finish(job.eval_id, "failed", None, f"{type(exc).__name__}: {exc}")

    async def _item(self, job: _Job, position: int, item: DatasetItem, judge: Judge) -> None:
        row = await self.database.fetch_one(
            "SELECT * FROM eval_results WHERE eval_id = :i AND position = :p",
            {"i": job.eval_id, "p": position},
        )
        if row is not None and row["status"] != "running":
            return  # scored before a restart
        run_id = row["run_id"] if row is not None else None
        thread_id = row["thread_id"] if row is not None else None
        if run_id is None and thread_id is not None:
            # Stopped between starting the run and recording it: the thread has it.
            started = await self.runs.store.list_runs(job.tenant_id, thread_id, limit=1)
            if started and started[0].status == "queued" and not started[0].workflow_id:
                # Its starter stopped before queueing it: it would never run. Start anew.
                await self.runs.cancel(job.tenant_id, started[0].id)
            elif started:
                run_id = started[0].id
        if run_id is None:
            if thread_id is None:
                thread = await self.runs.create_thread(
                    job.tenant_id, {"eval_id": job.eval_id, "item": position}
                )
                thread_id = thread.id
                # The thread first: a restart finds a run started on it (one per item).
                await self._record(job, position, thread_id, None, "running")
            try:
                record = await self.runs.start_run(
                    job.tenant_id, thread_id, job.agent, item.input,
                    version=job.version, variables=item.variables,
                )  # fmt: skip
            except InvalidRequest as exc:  # e.g. the item lacks a template variable
                await self._record(job, position, thread_id, None, "error",
                                   result=Score(0.0, False, exc.message))  # fmt: skip
                return
            run_id = record.id
            await self._record(job, position, thread_id, run_id, "running")
        final = await self.runs.wait(job.tenant_id, run_id, RUN_TIMEOUT_S)
        latency = max(0, final.updated_at - final.created_at)
        if final.status == "succeeded":
            result = await score(job.scorer, item, final.output, judge)
            status = "scored"
        else:
            result = Score(0.0, False, f"run {final.status}: {final.error or ''}".strip())
            status = "error"
        await self._record(job, position, thread_id, run_id, status, final.output, result, latency)

    async def _record(
        self, job: _Job, position: int, thread_id: str | None, run_id: str | None,
        status: str, output: Any = None, result: Score | None = None,
        latency_ms: int | None = None,
    ) -> None:  # fmt: skip
        params = {
            "i": job.eval_id, "t": job.tenant_id, "p": position, "th": thread_id, "r": run_id,
            "s": status, "o": None if output is None else json.dumps(output),
            "sc": None if result is None else result.score,
            "ok": None if result is None else int(result.passed),
            "why": None if result is None else result.reason,
            "l": latency_ms,
        }  # fmt: skip
        async with self.database.transaction() as conn:
            await conn.execute(
                text("DELETE FROM eval_results WHERE eval_id = :i AND position = :p"), params
            )
            await conn.execute(
                text("INSERT INTO eval_results (eval_id, position, tenant_id, thread_id, run_id,"
                     " status, output, score, passed, reason, latency_ms)"
                     " VALUES (:i, :p, :t, :th, :r, :s, :o, :sc, :ok, :why, :l)"),
                params,
            )  # fmt: skip

    async def _finish(
        self, eval_id: str, status: str, summary: dict[str, Any] | None, error: str | None
    ) -> None:
        await self.database.execute(
            "UPDATE eval_runs SET status = :s, summary = :m, error = :e, updated_at = :u"
            " WHERE id = :i",
            {"s": status, "m": None if summary is None else json.dumps(summary), "e": error,
             "u": now_ms(), "i": eval_id},
        )  # fmt: skip

    async def _agent_for(self, tenant_id: str, target: EvalTarget) -> tuple[str, int | str | None]:
        if target.agent is not None:
            found = await self.runs.registry.get(tenant_id, target.agent, target.version)
            return found.name, found.version
        # A prompt + model runs as an agent whose spec is just that prompt and model, so
        # its items are durable runs like any other (and show in traces as this agent).
        assert target.prompt is not None
        assert target.model is not None
        ref = PromptRef.parse(target.prompt)
        name = f"eval-{ref.name.replace('.', '-')}"[:64]
        spec = {"name": name, "model": target.model, "prompt": target.prompt,
                "max_iterations": 1,
                "description": f"evaluation of prompt {target.prompt} on {target.model}"}  # fmt: skip
        version, _ = await self.catalog.create(tenant_id, spec)
        return version.name, version.version


def summarize(rows: list[Row]) -> dict[str, Any]:
    """Pass rate (Wilson CI), mean score and latency (t CI), and how many runs failed."""
    scored = [r for r in rows if r["score"] is not None]
    passed = sum(1 for r in scored if r["passed"])
    latencies = [float(r["latency_ms"]) for r in rows if r["latency_ms"] is not None]
    return {
        "items": len(rows),
        "passed": passed,
        "pass_rate": stats.rate(passed, len(scored)),
        "score": stats.mean([float(r["score"]) for r in scored]),
        "latency_ms": stats.mean(latencies),
        "run_errors": sum(1 for r in rows if r["status"] == "error"),
    }


def _eval_dict(row: Row) -> dict[str, Any]:
    return {
        "object": "evaluation",
        "id": row["id"],
        "dataset": row["dataset"],
        "dataset_version": int(row["dataset_version"]),
        "target": json.loads(row["target"]),
        "scorer": json.loads(row["scorer"]),
        "status": row["status"],
        "item_count": int(row["item_count"]),
        "summary": json.loads(row["summary"]) if row["summary"] else None,
        "error": row["error"],
        "created_at": int(row["created_at"]),
        "updated_at": int(row["updated_at"]),
    }


def _result_dict(row: Row) -> dict[str, Any]:
    return {
        "position": int(row["position"]),
        "run_id": row["run_id"],
        "status": row["status"],
        "output": json.loads(row["output"]) if row["output"] is not None else None,
        "score": row["score"],
        "passed": None if row["passed"] is None else bool(row["passed"]),
        "reason": row["reason"],
        "latency_ms": row["latency_ms"],
    }
