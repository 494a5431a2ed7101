"""Failures mid-superstep: finished siblings keep their writes; a resume re-runs only the rest."""

import operator
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Annotated, TypedDict

import pytest

from roost.graph import START, StateGraph
from roost.graph.checkpoint.base import Checkpointer


class State(TypedDict):
    done: Annotated[list[str], operator.add]


def test_failed_sibling_keeps_finished_writes(checkpointer: Checkpointer) -> None:
    runs = {"a": 0, "b": 0, "join": 0}
    fail_b = [True]

    def make(name: str):
        def node(state: State) -> dict:
            runs[name] += 1
            if name == "b" and fail_b[0]:
                raise ConnectionError("b's service is down")
            return {"done": [name]}

        return node

    g = StateGraph(State)
    for name in runs:
        g.add_node(name, make(name))
    g.add_edge(START, "a")
    g.add_edge(START, "b")
    g.add_edge(["a", "b"], "join")
    graph = g.compile(checkpointer=checkpointer)

    with pytest.raises(ConnectionError):
        graph.invoke({}, thread_id="t")
    state = graph.get_state("t")
    assert state.next == ("b",)
    assert "b's service is down" in (state.tasks[0].error or "")

    fail_b[0] = False
    out = graph.invoke(None, thread_id="t")
    assert out["done"] == ["a", "b", "join"]
    assert runs == {"a": 1, "b": 2, "join": 1}


async def test_failed_sibling_keeps_finished_writes_async(checkpointer: Checkpointer) -> None:
    runs = {"a": 0, "b": 0}

    async def a(state: State) -> dict:
        runs["a"] += 1
        return {"done": ["a"]}

    async def b(state: State) -> dict:
        runs["b"] += 1
        if runs["b"] == 1:
            raise ConnectionError("down")
        return {"done": ["b"]}

    g = StateGraph(State)
    g.add_node("a", a)
    g.add_node("b", b)
    g.add_edge(START, "a")
    g.add_edge(START, "b")
    graph = g.compile(checkpointer=checkpointer)
    with pytest.raises(ConnectionError):
        await graph.ainvoke({}, thread_id="t")
    assert (await graph.ainvoke(None, thread_id="t"))["done"] == ["a", "b"]
    assert runs == {"a": 1, "b": 2}


CRASHING_RUN = textwrap.dedent(
    """
    import operator, os, signal, sqlite3, sys, time
    from pathlib import Path
    from typing import Annotated, TypedDict
    from roost.graph import START, StateGraph, SqliteCheckpointer

    class State(TypedDict):
        done: Annotated[list[str], operator.add]

    effects = Path(sys.argv[2])

    def wait_until_logged(node):
        # die only once the sibling's writes are durable, so the test is deterministic
        db = sqlite3.connect(sys.argv[1])
        deadline = time.monotonic() + 10
        query = "SELECT count(*) FROM graph_events WHERE node=? AND kind='writes'"
        while db.execute(query, (node,)).fetchone()[0] == 0 and time.monotonic() < deadline:
            time.sleep(0.005)

    def make(name):
        def node(state):
            with effects.open("a") as f:
                f.write(name + "\\n")
            if name == "crash" and os.environ.get("CRASH") == "1":
                wait_until_logged("fast")
                os.kill(os.getpid(), signal.SIGKILL)
            return {"done": [name]}
        return node

    g = StateGraph(State)
    for name in ("first", "fast", "crash", "last"):
        g.add_node(name, make(name))
    g.add_edge(START, "first")
    g.add_edge("first", "fast")
    g.add_edge("first", "crash")
    g.add_edge(["fast", "crash"], "last")
    graph = g.compile(checkpointer=SqliteCheckpointer(sys.argv[1]))
    resume = os.environ.get("CRASH") != "1"
    print(graph.invoke(None if resume else {}, thread_id="t")["done"])
    """
)


def test_process_killed_mid_step_resumes_without_rerunning_finished_nodes(tmp_path: Path) -> None:
    script = tmp_path / "run.py"
    script.write_text(CRASHING_RUN)
    db, effects = tmp_path / "g.db", tmp_path / "effects.txt"
    args = [sys.executable, str(script), str(db), str(effects)]
    env = {**os.environ, "CRASH": "1"}
    killed = subprocess.run(args, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert killed.returncode == -signal.SIGKILL
    resumed = subprocess.run(
        args,
        env={**os.environ, "CRASH": "0"},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert resumed.stdout.strip() == "['first', 'fast', 'crash', 'last']"
    lines = effects.read_text().split()
    assert lines.count("first") == 1
    assert lines.count("last") == 1
    assert lines.count("fast") == 1  # finished and logged before the kill: not re-run
    assert lines.count("crash") == 2  # killed mid-run, so it ran again
