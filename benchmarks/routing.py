"""Learned router on a synthetic task set: accuracy and cost after N feedback events,
against always-small, always-large, random and keyword rules.

    python benchmarks/routing.py [--events 50,100,200,400,800] [--embedder hashing|minilm]

Tasks come from templates in two classes. Easy ones succeed on the small model most of
the time; hard ones mostly need the large one, which costs 20x more. The best arm for
a task is the one with the higher expected reward (success − 100·USD). The router learns
online (choose → simulated outcome → update) and is then scored greedily on held-out
tasks. Results go to benchmarks/results/routing.json.
"""

from __future__ import annotations

import argparse
import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from roost.agents.routing import LearnedRouter, Outcome, RewardWeights, keyword_rules
from roost.llm.embeddings import HashingEmbedder, create_embedder

EASY = [
    "what is the capital of {x}",
    "translate the word {x} into French",
    "say good morning to {x}",
    "what time zone is {x} in",
    "spell {x} backwards",
    "give me a synonym for {x}",
]
HARD = [
    "prove that the {x} lemma holds for every graph",
    "derive a closed form for the {x} recurrence and justify each step",
    "find the race condition in this {x} scheduler written in Rust",
    "optimise the query plan of the {x} join over three partitioned tables",
    "write a compiler pass that inlines {x} calls across modules",
    "explain why the {x} consensus protocol stays safe under network partitions",
]
FILLERS = ["Peru", "apple", "Lisbon", "Ada", "kettle", "Fibonacci", "Paxos", "orders",
           "Kyoto", "river", "tokio", "vector", "Raft", "lambda", "Oslo", "maple"]  # fmt: skip
ARMS = ("small", "large")
COST = {"small": 0.0002, "large": 0.004}
SUCCESS = {("small", "easy"): 0.92, ("small", "hard"): 0.15,
           ("large", "easy"): 0.95, ("large", "hard"): 0.90}  # fmt: skip
WEIGHTS = RewardWeights(cost_per_usd=100.0)
RULES = keyword_rules({"large": ["prove", "refactor", "step by step", "analyze", "design"]},
                      "small")  # fmt: skip


@dataclass(frozen=True, slots=True)
class Task:
    text: str
    kind: str  # "easy" or "hard"

    @property
    def best_arm(self) -> str:
        return max(ARMS, key=lambda a: SUCCESS[(a, self.kind)] - WEIGHTS.cost_per_usd * COST[a])


def make_tasks(count: int, seed: int) -> list[Task]:
    rng = random.Random(seed)
    tasks = []
    for _ in range(count):
        kind = rng.choice(["easy", "hard"])
        template = rng.choice(EASY if kind == "easy" else HARD)
        tasks.append(Task(template.format(x=rng.choice(FILLERS)), kind))
    return tasks


def simulate(task: Task, arm: str, rng: random.Random) -> Outcome:
    return Outcome(success=rng.random() < SUCCESS[(arm, task.kind)], cost_usd=COST[arm])


def score(choices: list[str], tasks: list[Task], seed: int) -> dict[str, float]:
    rng = random.Random(seed)
    outcomes = [simulate(t, a, rng) for t, a in zip(tasks, choices, strict=True)]
    return {
        "accuracy": float(np.mean([a == t.best_arm for t, a in zip(tasks, choices, strict=True)])),
        "success_rate": float(np.mean([o.success for o in outcomes])),
        "cost_usd_per_task": float(np.mean([o.cost_usd for o in outcomes])),
        "reward": float(np.mean([WEIGHTS.reward(o) for o in outcomes])),
    }


def train(router: LearnedRouter, tasks: list[Task], vectors: Any, seed: int) -> None:
    rng = random.Random(seed)
    for task, vector in zip(tasks, vectors, strict=True):
        arm = router.choose(vector, task.text).arm
        router.update(vector, arm, simulate(task, arm, rng))


def greedy(router: LearnedRouter, tasks: list[Task], vectors: Any) -> list[str]:
    # evaluation: no exploration bonus, no random tries
    saved = router.alpha, router.epsilon
    router.alpha, router.epsilon = 0.0, 0.0
    try:
        return [router.choose(v, t.text).arm for t, v in zip(tasks, vectors, strict=True)]
    finally:
        router.alpha, router.epsilon = saved


def evaluate(events: list[int], embedder_name: str = "hashing", seed: int = 7) -> dict[str, Any]:
    embedder = HashingEmbedder(256) if embedder_name == "hashing" else create_embedder("minilm")
    embed = embedder.embed_sync  # type: ignore[attr-defined]
    stream = make_tasks(max(events), seed)
    held_out = make_tasks(500, seed + 1)
    stream_vectors, held_vectors = (
        embed([t.text for t in stream]),
        embed([t.text for t in held_out]),
    )
    rng = random.Random(seed)
    results: dict[str, Any] = {
        "embedder": embedder_name,
        "baselines": {
            "always_small": score(["small"] * len(held_out), held_out, seed),
            "always_large": score(["large"] * len(held_out), held_out, seed),
            "random": score([rng.choice(ARMS) for _ in held_out], held_out, seed),
            "rules": score([RULES(t.text) for t in held_out], held_out, seed),
        },
        "learned": {},
    }
    for count in events:
        router = LearnedRouter(ARMS, embedder.dimension, fallback=RULES, weights=WEIGHTS, seed=seed)
        train(router, stream[:count], stream_vectors[:count], seed)
        results["learned"][count] = score(greedy(router, held_out, held_vectors), held_out, seed)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", default="25,50,100,200,400,800")
    parser.add_argument("--embedder", default="hashing", choices=["hashing", "minilm"])
    args = parser.parse_args()
    events = [int(n) for n in args.events.split(",")]
    results = evaluate(events, args.embedder)
    print(f"{'policy':<22}{'accuracy':>10}{'success':>10}{'USD/task':>12}{'reward':>9}")
    rows = [(name, r) for name, r in results["baselines"].items()]
    rows += [(f"learned after {n}", r) for n, r in results["learned"].items()]
    for name, r in rows:
        print(f"{name:<22}{r['accuracy']:>10.3f}{r['success_rate']:>10.3f}"
              f"{r['cost_usd_per_task']:>12.5f}{r['reward']:>9.3f}")  # fmt: skip
    out = Path(__file__).parent / "results" / "routing.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
