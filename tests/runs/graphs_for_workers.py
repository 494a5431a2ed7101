"""Graphs the worker subprocesses of the run tests load (``--graphs tests.runs.graphs_for_workers:build``).

Paths come from environment variables the tests set; nodes leave side effects in
files so the tests can count how often each ran.
"""

from __future__ import annotations

import operator
import os
import time
from pathlib import Path
from typing import Annotated, TypedDict

from roost.graph import (
    START,
    Checkpointer,
    PostgresCheckpointer,
    SqliteCheckpointer,
    StateGraph,
    interrupt,
)


class Steps(TypedDict):
    done: Annotated[list[str], operator.add]


def _wait_for(path: Path, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} never appeared")
        time.sleep(0.01)


def _node(name: str, workdir: Path):
    def run(state: Steps) -> dict:
        thread = state.get("done", [""])[0] if state.get("done") else ""
        if name == "second" and os.environ.get("RUNS_TEST_HANG") == "1":
            (workdir / "second-started").touch()
            _wait_for(workdir / "release")  # the test kills or cancels this run here
        if name == "first" and os.environ.get("RUNS_TEST_MEET"):
            # every run waits until RUNS_TEST_MEET runs are in progress at once
            (workdir / f"started-{os.getpid()}-{time.monotonic_ns()}").touch()
            want = int(os.environ["RUNS_TEST_MEET"])
            deadline = time.monotonic() + 30
            while len(list(workdir.glob("started-*"))) < want and time.monotonic() < deadline:
                time.sleep(0.01)
        with (workdir / "effects.txt").open("a") as effects:
            effects.write(f"{name} {os.environ.get('RUNS_TEST_WORKER')} {thread}\n")
        return {"done": [f"{name}@{os.environ.get('RUNS_TEST_WORKER')}"]}

    return run


def build() -> dict:
    workdir = Path(os.environ["RUNS_TEST_WORKDIR"])
    g = StateGraph(Steps)
    for name in ("first", "second", "third"):
        g.add_node(name, _node(name, workdir))
    g.add_edge(START, "first")
    g.add_edge("first", "second")
    g.add_edge("second", "third")
    graph_db = os.environ.get("RUNS_TEST_GRAPH_DB")
    checkpointer: Checkpointer = (
        PostgresCheckpointer(graph_db) if graph_db else SqliteCheckpointer(workdir / "graphs.db")
    )

    approval = StateGraph(Steps)
    approval.add_node("ask", lambda s: {"done": [f"answer={interrupt('ship it?')}"]})
    approval.add_edge(START, "ask")
    return {
        "steps": g.compile(checkpointer=checkpointer),
        "approval": approval.compile(checkpointer=checkpointer),
    }
