"""Pattern 1, sequential: fetch -> clean -> summarize, each step checkpointed.

Run: .venv/bin/python examples/graph/sequential.py
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TypedDict

from roost.graph import END, START, SqliteCheckpointer, StateGraph


class Pipeline(TypedDict):
    source: str
    raw: str
    clean: str
    summary: str


def fetch(state: Pipeline) -> dict:
    return {"raw": f"  Report from {state['source']}:  Sales UP 12%.  Costs flat.  "}


def clean(state: Pipeline) -> dict:
    return {"clean": " ".join(state["raw"].split()).lower()}


def summarize(state: Pipeline) -> dict:
    sentences = [s.strip() for s in state["clean"].split(".") if s.strip()]
    return {"summary": f"{len(sentences)} facts; first: {sentences[0]}"}


def build(checkpointer: SqliteCheckpointer | None = None):
    g = StateGraph(Pipeline)
    g.add_node("fetch", fetch)
    g.add_node("clean", clean)
    g.add_node("summarize", summarize)
    g.add_edge(START, "fetch")
    g.add_edge("fetch", "clean")
    g.add_edge("clean", "summarize")
    g.add_edge("summarize", END)
    return g.compile(checkpointer=checkpointer)


def main(workdir: Path | None = None) -> dict:
    workdir = workdir or Path(tempfile.mkdtemp())
    graph = build(SqliteCheckpointer(workdir / "sequential.db"))
    result = graph.invoke({"source": "Q3 sales"}, thread_id="report-1")
    steps = [snapshot.metadata["source"] for snapshot in graph.get_state_history("report-1")]
    print(result["summary"])
    print(f"{len(steps)} checkpoints, newest first: {steps}")
    return result


if __name__ == "__main__":
    main()
