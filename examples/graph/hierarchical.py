"""Pattern 4, hierarchical (planner-worker): a planner splits the task, one worker
subgraph runs per subtask in parallel (``Send``), a synthesizer combines the results.

Each worker is a compiled graph used as a node: it has its own state and its own
checkpoint namespace under the parent thread.

Run: .venv/bin/python examples/graph/hierarchical.py
"""

from __future__ import annotations

import operator
from typing import Annotated, TypedDict

from roost.graph import END, START, MemoryCheckpointer, Send, StateGraph


class Job(TypedDict):
    task: str
    results: Annotated[list[str], operator.add]
    answer: str


class WorkerState(TypedDict):
    subtask: str
    notes: Annotated[list[str], operator.add]
    results: Annotated[list[str], operator.add]


def build_worker():
    """A small agent of its own: research the subtask, then write up a result."""

    def research(state: WorkerState) -> dict:
        return {"notes": [f"looked into {state['subtask']}"]}

    def write_up(state: WorkerState) -> dict:
        return {"results": [f"{state['subtask']}: done ({len(state['notes'])} note)"]}

    g = StateGraph(WorkerState)
    g.add_node("research", research)
    g.add_node("write_up", write_up)
    g.add_edge(START, "research")
    g.add_edge("research", "write_up")
    g.add_edge("write_up", END)
    return g.compile()


def plan(state: Job) -> list[Send]:
    subtasks = [part.strip() for part in state["task"].split(" and ")]
    return [Send("worker", {"subtask": subtask}) for subtask in subtasks]


def synthesize(state: Job) -> dict:
    return {"answer": "; ".join(sorted(state["results"]))}


def build(checkpointer: MemoryCheckpointer | None = None):
    g = StateGraph(Job)
    g.add_node("plan", plan)
    g.add_node("worker", build_worker())
    g.add_node("synthesize", synthesize)
    g.add_edge(START, "plan")
    g.add_edge("worker", "synthesize")
    g.add_edge("synthesize", END)
    return g.compile(checkpointer=checkpointer)


def main() -> dict:
    graph = build(MemoryCheckpointer())
    result = graph.invoke(
        {"task": "research the API and write the client and add tests"}, thread_id="job-1"
    )
    print(result["answer"])
    return result


if __name__ == "__main__":
    main()
