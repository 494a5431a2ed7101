"""Pattern 2, parallel: split -> three async tasks at once -> join (waits for all three).

Run: .venv/bin/python examples/graph/parallel.py
"""

from __future__ import annotations

import asyncio
import operator
import time
from typing import Annotated, TypedDict

from roost.graph import END, START, StateGraph


class Research(TypedDict):
    topic: str
    findings: Annotated[list[str], operator.add]  # parallel writes are appended
    report: str


def split(state: Research) -> dict:
    return {"topic": state["topic"].strip()}


def source(name: str, delay: float):
    async def look_up(state: Research) -> dict:
        await asyncio.sleep(delay)  # stands in for a web search or an API call
        return {"findings": [f"{name}: notes on {state['topic']}"]}

    return look_up


def join(state: Research) -> dict:
    return {"report": " | ".join(sorted(state["findings"]))}


def build():
    g = StateGraph(Research)
    g.add_node("split", split)
    g.add_node("web", source("web", 0.05))
    g.add_node("papers", source("papers", 0.05))
    g.add_node("code", source("code", 0.05))
    g.add_node("join", join)
    g.add_edge(START, "split")
    for task in ("web", "papers", "code"):
        g.add_edge("split", task)
    g.add_edge(["web", "papers", "code"], "join")  # fan-in: join runs once, after all three
    g.add_edge("join", END)
    return g.compile()


async def main() -> dict:
    started = time.perf_counter()
    result = await build().ainvoke({"topic": " vector databases "})
    print(result["report"])
    print(f"three 50 ms lookups took {time.perf_counter() - started:.2f}s together")
    return result


if __name__ == "__main__":
    asyncio.run(main())
