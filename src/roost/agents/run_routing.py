"""Learned model routing for agent runs: a spec's ``route:`` names candidate models, a
:class:`~roost.agents.routing.LearnedRouter` per tenant and router name picks one per run
from the task, and each settled run's outcome (success, cost, latency) trains it.

Routers live in ``agent_router_state`` (per tenant and name), so they keep learning across
restarts. Tasks are embedded with the hashing embedder: instant, deterministic, no model to
load, and the same features in every process. A learn step is load → update → save under
a per-router lock; two processes learning the same router at the same moment may lose
one update (the router is a statistic, not a ledger).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from roost.agents.routing import (
    ROUTER_MIGRATIONS,
    LearnedRouter,
    Outcome,
    RewardWeights,
    RouterStore,
    keyword_rules,
)
from roost.agents.spec import RoutePolicy
from roost.config import AgentRoutingSettings
from roost.llm.cost import usd
from roost.llm.embeddings import HashingEmbedder
from roost.llm.messages import Usage
from roost.llm.service import LLMService
from roost.storage import Database, migrate

CostOf = Callable[[str, Mapping[str, int]], float]  # (model, run usage) -> USD


@dataclass(frozen=True, slots=True)
class RouteChoice:
    """What a run was routed to, kept in its state until the outcome is learned."""

    router: str
    arm: str
    source: str  # learned, fallback or explore
    task: str
    candidates: tuple[str, ...]
    started_ms: int

    def to_state(self) -> dict[str, Any]:
        return {
            "router": self.router,
            "arm": self.arm,
            "source": self.source,
            "task": self.task,
            "candidates": list(self.candidates),
            "started_ms": self.started_ms,
        }

    @classmethod
    def from_state(cls, value: Mapping[str, Any]) -> RouteChoice:
        return cls(
            str(value["router"]),
            str(value["arm"]),
            str(value["source"]),
            str(value["task"]),
            tuple(value["candidates"]),
            int(value["started_ms"]),
        )


def priced_by(llm: LLMService) -> CostOf:
    """Run cost from the LLM layer's price table (a group is priced by its first model)."""

    def cost_of(model: str, usage: Mapping[str, int]) -> float:
        model_id = llm.router.resolve(model).deployments[0].model_id
        spent = Usage(
            usage.get("input_tokens", 0),
            usage.get("output_tokens", 0),
            usage.get("cached_input_tokens", 0),
        )
        return usd(llm.prices.cost_nano(model_id, spent))

    return cost_of


def fallback_choice(policy: RoutePolicy, task: str) -> str:
    """The pick of the spec's keyword rules (the first candidate when none matches)."""
    return keyword_rules(policy.keywords, policy.candidates[0])(task)


class RunRouting:
    """Chooses models for routed runs and learns from their outcomes, per tenant."""

    def __init__(
        self,
        store: RouterStore,
        settings: AgentRoutingSettings | None = None,
        *,
        cost_of: CostOf | None = None,
    ) -> None:
        self.store = store
        self.settings = settings or AgentRoutingSettings()
        self.cost_of = cost_of
        self.weights = RewardWeights(
            cost_per_usd=self.settings.cost_per_usd, latency_per_s=self.settings.latency_per_s
        )
        self.embedder = HashingEmbedder(self.settings.embedding_dim)
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}

    @classmethod
    async def open(
        cls,
        database: Database,
        settings: AgentRoutingSettings | None = None,
        *,
        cost_of: CostOf | None = None,
    ) -> RunRouting:
        """Migrate the router table and build the service (the kernel does this once)."""
        await migrate(database, ROUTER_MIGRATIONS)
        return cls(RouterStore(database), settings, cost_of=cost_of)

    async def choose(
        self, tenant_id: str, name: str, policy: RoutePolicy, task: str
    ) -> RouteChoice:
        router = await self._router(tenant_id, name, policy)
        vector = self.embedder.embed_sync([task])[0]
        choice = router.choose(vector, task)
        now = int(time.time() * 1000)
        return RouteChoice(name, choice.arm, choice.source, task, tuple(policy.candidates), now)

    async def learn(
        self, tenant_id: str, choice: RouteChoice, succeeded: bool, usage: Mapping[str, int]
    ) -> float:
        """Credit the run's pick with its outcome and persist the router; returns the reward."""
        cost = self.cost_of(choice.arm, usage) if self.cost_of is not None else 0.0
        latency = max(0.0, time.time() - choice.started_ms / 1000)
        outcome = Outcome(succeeded, cost_usd=cost, latency_s=latency)
        async with self._lock(tenant_id, choice.router):
            router = await self.store.load(tenant_id, choice.router, weights=self.weights)
            if router is None:
                router = LearnedRouter(choice.candidates, self.settings.embedding_dim,
                                       weights=self.weights)  # fmt: skip
            elif router.arms != list(choice.candidates):
                return 0.0  # the spec's candidates changed since this run was routed
            reward = router.update(self.embedder.embed_sync([choice.task])[0], choice.arm, outcome)
            await self.store.save(tenant_id, choice.router, router)
        return reward

    async def _router(self, tenant_id: str, name: str, policy: RoutePolicy) -> LearnedRouter:
        fallback = keyword_rules(policy.keywords, policy.candidates[0])
        router = await self.store.load(tenant_id, name, fallback=fallback, weights=self.weights)
        if router is None or router.arms != list(policy.candidates):
            # New, or the candidates changed: what was learned about other arms is moot.
            router = LearnedRouter(policy.candidates, self.settings.embedding_dim,
                                   fallback=fallback, weights=self.weights)  # fmt: skip
        router.min_updates = self.settings.min_updates
        router.epsilon = self.settings.epsilon
        router.alpha = self.settings.alpha
        return router

    def _lock(self, tenant_id: str, name: str) -> asyncio.Lock:
        return self._locks.setdefault((tenant_id, name), asyncio.Lock())
