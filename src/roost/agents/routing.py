"""Learned router: picks an arm (an agent, or a model group such as "small"/"large") for a
task from its embedding, and learns from run outcomes (success, cost, latency, feedback).

A contextual bandit (LinUCB, one ridge-regression model per arm over a fixed random
projection of the embedding): the score is the predicted reward plus an exploration bonus
that shrinks as an arm sees similar tasks. Until it has seen ``min_updates`` outcomes it
falls back to rules (or whatever callable it is given), exploring other arms with
probability ``epsilon`` so that every arm gets data. State is a few small matrices,
persisted as bytes (:class:`RouterStore` keeps them per tenant in the database).
"""

from __future__ import annotations

import io
import json
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import text

from roost.storage import Database, Migration, now_ms

Fallback = Callable[[str], str]
Vector = NDArray[np.float64]

ROUTER_MIGRATIONS = [
    Migration(
        component="agents_router",
        version=1,
        name="learned router state",
        common=[
            """CREATE TABLE agent_router_state (
                tenant_id TEXT NOT NULL,
                name TEXT NOT NULL,
                state TEXT NOT NULL,
                updated_at BIGINT NOT NULL,
                PRIMARY KEY (tenant_id, name)
            )"""
        ],
    )
]


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a routed run turned into. ``feedback`` is a user's rating in [-1, 1]."""

    success: bool
    cost_usd: float = 0.0
    latency_s: float = 0.0
    feedback: float | None = None


@dataclass(frozen=True, slots=True)
class RewardWeights:
    """Reward = success + feedback_weight·feedback − cost_weight·USD − latency_weight·seconds."""

    cost_per_usd: float = 100.0
    latency_per_s: float = 0.0
    feedback: float = 0.5

    def reward(self, outcome: Outcome) -> float:
        value = 1.0 if outcome.success else 0.0
        value -= self.cost_per_usd * outcome.cost_usd + self.latency_per_s * outcome.latency_s
        if outcome.feedback is not None:
            value += self.feedback * outcome.feedback
        return value


@dataclass(frozen=True, slots=True)
class Choice:
    arm: str
    source: str  # "learned", "fallback" or "explore"
    scores: dict[str, float]


def keyword_rules(rules: Mapping[str, Sequence[str]], default: str) -> Fallback:
    """A fallback: the first arm whose keywords occur in the task, else ``default``."""

    def choose(task: str) -> str:
        lowered = task.lower()
        for arm, words in rules.items():
            if any(w.lower() in lowered for w in words):
                return arm
        return default

    return choose


class LearnedRouter:
    """LinUCB over projected embeddings, with a rule fallback while untrained."""

    def __init__(
        self,
        arms: Sequence[str],
        input_dim: int,
        *,
        dim: int = 32,
        alpha: float = 1.0,
        ridge: float = 1.0,
        min_updates: int = 20,
        epsilon: float = 0.2,
        fallback: Fallback | None = None,
        weights: RewardWeights | None = None,
        seed: int = 0,
    ) -> None:
        if len(set(arms)) != len(arms) or not arms:
            raise ValueError("arms must be distinct and at least one")
        self.arms = list(arms)
        self.input_dim = input_dim
        self.dim = dim
        self.alpha = alpha
        self.min_updates = min_updates
        self.epsilon = epsilon
        self.fallback = fallback or (lambda _task: self.arms[0])
        self.weights = weights or RewardWeights()
        self.seed = seed
        self._random = random.Random(seed)
        # A fixed Gaussian projection keeps the per-arm matrices small whatever the embedder.
        generator = np.random.default_rng(seed)
        self.projection = generator.normal(0, 1 / np.sqrt(dim), (input_dim, dim))
        size = dim + 1  # + a bias feature
        self.a_inv = {arm: np.eye(size) / ridge for arm in self.arms}
        self.b = {arm: np.zeros(size) for arm in self.arms}
        self.num_updates = 0

    def features(self, embedding: Sequence[float] | NDArray[Any]) -> Vector:
        x = np.asarray(embedding, dtype=np.float64) @ self.projection
        norm = np.linalg.norm(x)
        return np.append(x / norm if norm else x, 1.0)

    def scores(self, x: Vector) -> dict[str, float]:
        result = {}
        for arm in self.arms:
            theta = self.a_inv[arm] @ self.b[arm]
            bonus = self.alpha * float(np.sqrt(x @ self.a_inv[arm] @ x))
            result[arm] = float(theta @ x) + bonus
        return result

    def choose(self, embedding: Sequence[float] | NDArray[Any], task: str = "") -> Choice:
        """The arm for a task; ``task`` text feeds the fallback rules while untrained."""
        x = self.features(embedding)
        scores = self.scores(x)
        if self.num_updates < self.min_updates:
            if self._random.random() < self.epsilon:
                return Choice(self._random.choice(self.arms), "explore", scores)
            return Choice(self.fallback(task), "fallback", scores)
        best = max(self.arms, key=lambda arm: scores[arm])
        return Choice(best, "learned", scores)

    def update(
        self, embedding: Sequence[float] | NDArray[Any], arm: str, outcome: Outcome
    ) -> float:
        """Learn from one outcome; returns the reward it counted."""
        x = self.features(embedding)
        reward = self.weights.reward(outcome)
        a_inv = self.a_inv[arm]
        ax = a_inv @ x  # Sherman–Morrison: (A + x xᵀ)⁻¹ without a matrix inverse
        self.a_inv[arm] = a_inv - np.outer(ax, ax) / (1.0 + x @ ax)
        self.b[arm] = self.b[arm] + reward * x
        self.num_updates += 1
        return reward

    # -- persistence ------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        buffer = io.BytesIO()
        meta = {"arms": self.arms, "input_dim": self.input_dim, "dim": self.dim,
                "alpha": self.alpha, "min_updates": self.min_updates, "epsilon": self.epsilon,
                "num_updates": self.num_updates, "seed": self.seed}  # fmt: skip
        arrays: dict[str, Any] = {"meta": np.array(json.dumps(meta)), "projection": self.projection}
        arrays.update({f"a_inv:{arm}": self.a_inv[arm] for arm in self.arms})
        arrays.update({f"b:{arm}": self.b[arm] for arm in self.arms})
        np.savez_compressed(buffer, **arrays)
        return buffer.getvalue()

    @classmethod
    def from_bytes(
        cls, data: bytes, *, fallback: Fallback | None = None, weights: RewardWeights | None = None
    ) -> LearnedRouter:
        with np.load(io.BytesIO(data)) as stored:
            meta = json.loads(str(stored["meta"]))
            router = cls(
                meta["arms"], meta["input_dim"], dim=meta["dim"], alpha=meta["alpha"],
                min_updates=meta["min_updates"], epsilon=meta["epsilon"], fallback=fallback,
                weights=weights, seed=meta["seed"],
            )  # fmt: skip
            router.projection = stored["projection"]
            for arm in router.arms:
                router.a_inv[arm] = stored[f"a_inv:{arm}"]
                router.b[arm] = stored[f"b:{arm}"]
        router.num_updates = int(meta["num_updates"])
        return router


class RouterStore:
    """Routers persisted per tenant and name (hex of the compressed arrays)."""

    def __init__(self, database: Database) -> None:
        self.database = database

    async def save(self, tenant_id: str, name: str, router: LearnedRouter) -> None:
        params = {"t": tenant_id, "n": name, "s": router.to_bytes().hex(), "u": now_ms()}
        async with self.database.transaction() as conn:
            await conn.execute(
                text("DELETE FROM agent_router_state WHERE tenant_id = :t AND name = :n"), params
            )
            await conn.execute(
                text(
                    "INSERT INTO agent_router_state (tenant_id, name, state, updated_at)"
                    " VALUES (:t, :n, :s, :u)"
                ),
                params,
            )

    async def load(
        self,
        tenant_id: str,
        name: str,
        *,
        fallback: Fallback | None = None,
        weights: RewardWeights | None = None,
    ) -> LearnedRouter | None:
        row = await self.database.fetch_one(
            "SELECT state FROM agent_router_state WHERE tenant_id = :t AND name = :n",
            {"t": tenant_id, "n": name},
        )
        if row is None:
            return None
        state = bytes.fromhex(row["state"])
        return LearnedRouter.from_bytes(state, fallback=fallback, weights=weights)


class LearnedModelPolicy:
    """The router as a routing policy of the LLM layer (``Router.policies[name] = policy``):
    requests to the policy's name go to the model group the router picks for the last
    user message. ``choose`` is synchronous, so ``embed`` must be too (``embed_sync``)."""

    def __init__(
        self, router: LearnedRouter, embed: Callable[[Sequence[str]], NDArray[Any]]
    ) -> None:
        self.router = router
        self.embed = embed
        self.last: tuple[NDArray[Any], str] | None = None

    def choose(self, messages: Sequence[Any], tools: Sequence[Any], settings: Any) -> str:
        text = next((m.text for m in reversed(messages) if m.role == "user"), "")
        vector = self.embed([text])[0]
        arm = self.router.choose(vector, text).arm
        self.last = (vector, arm)
        return arm

    def feedback(self, outcome: Outcome) -> None:
        """Credit the last choice with its outcome (callers that track their requests use
        :meth:`LearnedRouter.update` directly)."""
        if self.last is not None:
            vector, arm = self.last
            self.router.update(vector, arm, outcome)
