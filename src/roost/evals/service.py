"""Datasets, evaluations, experiments and feedback as one kernel service."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from roost.agents.catalog import AgentCatalog
from roost.agents.service import AgentRunService
from roost.config import EvalSettings
from roost.errors import Overloaded
from roost.evals.datasets import DatasetStore
from roost.evals.evaluations import EvalService
from roost.evals.experiments import CostOf, ExperimentService, ExperimentSpec
from roost.evals.feedback import FeedbackStore
from roost.evals.schema import EVAL_MIGRATIONS
from roost.evals.scorers import Judge
from roost.llm.base import RequestContext
from roost.llm.messages import Message, ModelSettings
from roost.storage import Database, migrate


@dataclass(slots=True)
class EvalServices:
    datasets: DatasetStore
    evaluations: EvalService
    experiments: ExperimentService
    feedback: FeedbackStore
    runs: AgentRunService
    catalog: AgentCatalog

    async def create_experiment(self, tenant_id: str, spec: ExperimentSpec) -> dict[str, Any]:
        """Start an experiment whose agent exists and whose every variant can run: its
        prompt resolves and its model is one this deployment offers."""
        agent = await self.runs.registry.get(tenant_id, spec.agent)
        for variant in spec.variants:
            if variant.prompt is not None:
                if self.runs.prompts is None:
                    raise Overloaded("prompt management is not running in this process")
                await self.runs.prompts.resolve(tenant_id, variant.prompt)
            if variant.model is not None:
                data = {**agent.spec.model_dump(mode="json", exclude_none=True),
                        "model": variant.model}  # fmt: skip
                await self.catalog.check(tenant_id, data)
        return await self.experiments.create(tenant_id, spec)

    @classmethod
    async def open(
        cls,
        database: Database,
        runs: AgentRunService,
        catalog: AgentCatalog,
        llm: Any,
        settings: EvalSettings,
        cost_of: CostOf | None = None,
    ) -> EvalServices:
        await migrate(database, EVAL_MIGRATIONS)
        datasets = DatasetStore(database)

        def judge_for(tenant_id: str) -> Judge:
            async def judge(model: str, prompt: str) -> str:
                # Through the LLM layer, so the tenant's budgets, limits and traces apply.
                response = await llm.request(
                    model,
                    [Message.user(prompt)],
                    ModelSettings(max_tokens=settings.judge_max_tokens, temperature=0.0),
                    context=RequestContext(tenant_id, agent_id="eval-judge"),
                )
                return str(response.text)

            return judge

        evaluations = EvalService(database, datasets, runs, catalog, judge_for, settings)
        experiments = ExperimentService(database, cost_of)
        runs.experiments = experiments
        return cls(datasets, evaluations, experiments, FeedbackStore(database), runs, catalog)

    async def close(self) -> None:
        await self.evaluations.close()
