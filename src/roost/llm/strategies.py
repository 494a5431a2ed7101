"""Routing strategies: the order in which a group's deployments are tried.

The first is the one asked; the rest are the failover order. Every strategy keeps the
configured order as the tie-breaker, so behaviour is predictable.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from roost.llm.base import Model
from roost.llm.cost import PriceTable
from roost.llm.health import DeploymentHealth


@dataclass(slots=True, eq=False)
class Deployment:
    """One model in a group, with its weight and the health this process observed."""

    model: Model
    weight: float = 1.0
    health: DeploymentHealth = field(default_factory=DeploymentHealth)
    current_weight: float = 0.0  # smooth weighted round-robin state

    @property
    def model_id(self) -> str:
        return self.model.model_id


class Strategy(Protocol):
    name: str

    def order(self, deployments: Sequence[Deployment]) -> list[Deployment]: ...


class PriorityStrategy:
    """Configured order: the first deployment takes all traffic while it is healthy."""

    name = "priority"

    def order(self, deployments: Sequence[Deployment]) -> list[Deployment]:
        return list(deployments)


class WeightedRoundRobin:
    """Smooth weighted round-robin (as nginx does it): traffic in proportion to weight,
    interleaved rather than in bursts; failover in configured order."""

    name = "weighted"

    def order(self, deployments: Sequence[Deployment]) -> list[Deployment]:
        if not deployments:
            return []
        total = sum(d.weight for d in deployments)
        for d in deployments:
            d.current_weight += d.weight
        chosen = max(deployments, key=lambda d: d.current_weight)
        chosen.current_weight -= total
        return [chosen, *(d for d in deployments if d is not chosen)]


class LeastLatency:
    """Fastest observed first; a deployment never measured goes first so it gets measured."""

    name = "least_latency"

    def order(self, deployments: Sequence[Deployment]) -> list[Deployment]:
        return sorted(
            deployments,
            key=lambda d: -1.0 if d.health.latency_s is None else d.health.latency_s,
        )


class LowestCost:
    """Cheapest first by blended list price; unpriced (self-hosted) deployments count as free."""

    name = "lowest_cost"

    def __init__(self, prices: PriceTable) -> None:
        self.prices = prices

    def order(self, deployments: Sequence[Deployment]) -> list[Deployment]:
        def blended(d: Deployment) -> float:
            price = self.prices.get(d.model_id)
            return 0.0 if price is None else price.blended

        return sorted(deployments, key=blended)


def make_strategy(name: str, prices: PriceTable) -> Strategy:
    strategies: dict[str, Strategy] = {
        "priority": PriorityStrategy(),
        "weighted": WeightedRoundRobin(),
        "least_latency": LeastLatency(),
        "lowest_cost": LowestCost(prices),
    }
    try:
        return strategies[name]
    except KeyError:
        raise ValueError(f"unknown routing strategy {name!r}") from None
