"""Roost graph engine vs LangGraph, side by side in one run.

    .venv/bin/pip install langgraph langgraph-checkpoint-sqlite   # benchmark-only peers
    .venv/bin/python benchmarks/graph.py [--quick]

Measures (targets from issue 6):
1. per-step overhead of a 500-step linear graph, durable after every step on SQLite
   (same WAL + synchronous settings for both)                    target: <= 0.5x LangGraph
2. 200 concurrent runs x 20 steps in one process (steps/s)       target: >= 2x LangGraph
3. a 500-turn thread appending one 400-char message per turn: stored bytes vs raw message
   bytes (target <= 3x) and get_state latency at turn 500 (target <= 2 ms)
Prints a table and writes benchmarks/results/graph.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Annotated, Any, TypedDict

from roost.graph import END, START, SqliteCheckpointer, StateGraph, add_messages
from roost.graph import MemoryCheckpointer as RoostMemory
from roost.graph.history import clear_snapshot_cache as history_cache_clear

try:
    import langgraph.graph as lg
    from langchain_core.messages import AIMessage
    from langgraph.checkpoint.memory import InMemorySaver
    from langgraph.checkpoint.sqlite import SqliteSaver
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

    HAVE_LANGGRAPH = True
except ImportError:
    HAVE_LANGGRAPH = False

RESULTS = Path(__file__).parent / "results" / "graph.json"
_WORDS = [
    "agent",
    "tool",
    "memory",
    "plan",
    "result",
    "query",
    "answer",
    "cache",
    "thread",
    "state",
    "model",
    "token",
    "latency",
    "budget",
    "search",
    "file",
    "error",
    "retry",
    "graph",
    "node",
    "edge",
    "worker",
    "queue",
    "user",
    "system",
    "reply",
    "draft",
    "review",
    "approve",
    "deploy",
    "test",
    "metric",
    "vector",
    "index",
    "prompt",
    "reason",
    "observe",
    "act",
    "reflect",
]


def make_message(turn: int) -> str:
    """A distinct 400-character message of varied words: compresses like prose, not like
    a repeated letter, so storage figures are honest."""
    rng = random.Random(turn)
    text = ""
    while len(text) < 400:
        text += rng.choice(_WORDS) + " "
    return text[:400]


class Counter(TypedDict):
    x: int
    tag: str


class Chat(TypedDict):
    messages: Annotated[list, add_messages]


def _incr(state: dict) -> dict:
    return {"x": state["x"] + 1}


async def _aincr(state: dict) -> dict:
    return {"x": state["x"] + 1}


def _linear(builder_cls: Any, schema: type, n: int, fn: Any) -> Any:
    g = builder_cls(schema)
    for i in range(n):
        g.add_node(f"n{i}", fn)
    g.add_edge(START if builder_cls is StateGraph else lg.START, "n0")
    for i in range(n - 1):
        g.add_edge(f"n{i}", f"n{i + 1}")
    g.add_edge(f"n{n - 1}", END if builder_cls is StateGraph else lg.END)
    return g


def _connect_lg(path: Path, synchronous: str) -> sqlite3.Connection:
    conn = sqlite3.connect(str(path), check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    return conn


def _stored_bytes(path: Path) -> int:
    """Bytes in every column of every row of every table (what the checkpointer stored)."""
    conn = sqlite3.connect(str(path))
    total = 0
    for (table,) in conn.execute("SELECT name FROM sqlite_master WHERE type='table'"):
        columns = [row[1] for row in conn.execute(f"PRAGMA table_info({table})")]
        expr = " + ".join(f"coalesce(length(CAST({c} AS BLOB)), 0)" for c in columns)
        total += conn.execute(f"SELECT coalesce(sum({expr}), 0) FROM {table}").fetchone()[0]
    conn.close()
    return int(total)


# -- 1. per-step overhead ----------------------------------------------------------------
def bench_steps(tmp: Path, steps: int, synchronous: str, repeats: int) -> dict[str, float]:
    out: dict[str, float] = {}
    roost_times, lg_times = [], []
    for r in range(repeats):
        cp = SqliteCheckpointer(tmp / f"roost_steps_{synchronous}_{r}.db", synchronous=synchronous)  # type: ignore[arg-type]
        graph = _linear(StateGraph, Counter, steps, _incr).compile(
            checkpointer=cp, durability="sync"
        )
        start = time.perf_counter()
        result = graph.invoke({"x": 0, "tag": "t" * 64}, thread_id="t", recursion_limit=steps + 5)
        roost_times.append(time.perf_counter() - start)
        assert result["x"] == steps
        cp.close()
        if HAVE_LANGGRAPH:
            conn = _connect_lg(tmp / f"lg_steps_{synchronous}_{r}.db", synchronous)
            saver = SqliteSaver(conn)
            lgraph = _linear(lg.StateGraph, Counter, steps, _incr).compile(checkpointer=saver)
            config = {"configurable": {"thread_id": "t"}, "recursion_limit": steps + 5}
            start = time.perf_counter()
            result = lgraph.invoke({"x": 0, "tag": "t" * 64}, config, durability="sync")
            lg_times.append(time.perf_counter() - start)
            assert result["x"] == steps
            conn.close()
    out["roost_us_per_step"] = min(roost_times) / steps * 1e6
    if lg_times:
        out["langgraph_us_per_step"] = min(lg_times) / steps * 1e6
        out["ratio"] = out["roost_us_per_step"] / out["langgraph_us_per_step"]
    return out


# -- 2. concurrent runs -----------------------------------------------------------------
async def _roost_concurrent(runs: int, steps: int, checkpointer: Any) -> float:
    graph = _linear(StateGraph, Counter, steps, _aincr).compile(checkpointer=checkpointer)
    start = time.perf_counter()
    results = await asyncio.gather(
        *(graph.ainvoke({"x": 0, "tag": "t"}, thread_id=f"r{i}") for i in range(runs))
    )
    elapsed = time.perf_counter() - start
    assert all(r["x"] == steps for r in results)
    return runs * steps / elapsed


async def _lg_concurrent(runs: int, steps: int, checkpointer: Any) -> float:
    graph = _linear(lg.StateGraph, Counter, steps, _aincr).compile(checkpointer=checkpointer)
    start = time.perf_counter()
    results = await asyncio.gather(
        *(
            graph.ainvoke({"x": 0, "tag": "t"}, {"configurable": {"thread_id": f"r{i}"}})
            for i in range(runs)
        )
    )
    elapsed = time.perf_counter() - start
    assert all(r["x"] == steps for r in results)
    return runs * steps / elapsed


def bench_concurrent(tmp: Path, runs: int, steps: int, repeats: int) -> dict[str, float]:
    out: dict[str, float] = {}
    best: dict[str, list[float]] = {}
    for r in range(repeats):
        best.setdefault("roost_memory", []).append(
            asyncio.run(_roost_concurrent(runs, steps, RoostMemory()))
        )
        cp = SqliteCheckpointer(tmp / f"roost_conc_{r}.db", synchronous="NORMAL")
        best.setdefault("roost_sqlite", []).append(asyncio.run(_roost_concurrent(runs, steps, cp)))
        cp.close()
        if HAVE_LANGGRAPH:
            best.setdefault("langgraph_memory", []).append(
                asyncio.run(_lg_concurrent(runs, steps, InMemorySaver()))
            )

            async def lg_sqlite(path: Path) -> float:
                async with AsyncSqliteSaver.from_conn_string(str(path)) as saver:
                    await saver.conn.execute("PRAGMA synchronous=NORMAL")
                    return await _lg_concurrent(runs, steps, saver)

            best.setdefault("langgraph_sqlite", []).append(
                asyncio.run(lg_sqlite(tmp / f"lg_conc_{r}.db"))
            )
    for key, values in best.items():
        out[f"{key}_steps_per_s"] = max(values)
    if HAVE_LANGGRAPH:
        out["ratio_memory"] = out["roost_memory_steps_per_s"] / out["langgraph_memory_steps_per_s"]
        out["ratio_sqlite"] = out["roost_sqlite_steps_per_s"] / out["langgraph_sqlite_steps_per_s"]
    return out


# -- 3. message thread storage and get_state ----------------------------------------------
def bench_thread(tmp: Path, turns: int) -> dict[str, float]:
    out: dict[str, float] = {"raw_message_bytes": turns * 400}
    path = tmp / "roost_thread.db"
    cp = SqliteCheckpointer(path, synchronous="NORMAL")
    g = StateGraph(Chat)
    g.add_node(
        "reply",
        lambda s: {
            "messages": [{"role": "assistant", "content": make_message(len(s["messages"]))}]
        },
    )
    g.add_edge(START, "reply")
    graph = g.compile(checkpointer=cp)
    for _ in range(turns):
        graph.invoke({"messages": []}, thread_id="t")
    cp.close()
    out["roost_stored_bytes"] = _stored_bytes(path)
    fresh = g.compile(checkpointer=SqliteCheckpointer(path, synchronous="NORMAL"))
    assert len(fresh.get_state("t").values["messages"]) == turns
    # cold: no decoded snapshot cached in this process (a fresh worker); warm: the usual case
    cold = _time_ms(lambda: fresh.get_state("t"), before_each=history_cache_clear)
    warm = _time_ms(lambda: fresh.get_state("t"))
    out["roost_get_state_cold_ms"] = cold["median"]
    out["roost_get_state_ms"] = warm["median"]
    out["roost_get_state_min_ms"] = warm["min"]
    if HAVE_LANGGRAPH:
        lpath = tmp / "lg_thread.db"
        conn = _connect_lg(lpath, "NORMAL")

        class LgChat(TypedDict):
            messages: Annotated[list, lg.add_messages]

        lgb = lg.StateGraph(LgChat)
        lgb.add_node(
            "reply", lambda s: {"messages": [AIMessage(content=make_message(len(s["messages"])))]}
        )
        lgb.add_edge(lg.START, "reply")
        lgraph = lgb.compile(checkpointer=SqliteSaver(conn))
        config = {"configurable": {"thread_id": "t"}}
        for _ in range(turns):
            lgraph.invoke({"messages": []}, config)
        conn.close()
        out["langgraph_stored_bytes"] = _stored_bytes(lpath)
        conn = _connect_lg(lpath, "NORMAL")
        lfresh = lgb.compile(checkpointer=SqliteSaver(conn))
        assert len(lfresh.get_state(config).values["messages"]) == turns
        theirs = _time_ms(lambda: lfresh.get_state(config))
        out["langgraph_get_state_ms"] = theirs["median"]
        out["langgraph_get_state_min_ms"] = theirs["min"]
        conn.close()
    out["roost_storage_ratio"] = out["roost_stored_bytes"] / out["raw_message_bytes"]
    if "langgraph_stored_bytes" in out:
        out["langgraph_storage_ratio"] = out["langgraph_stored_bytes"] / out["raw_message_bytes"]
    return out


def _time_ms(fn: Any, repeats: int = 30, before_each: Any = None) -> dict[str, float]:
    fn()  # warm the OS page cache for both engines alike
    samples = []
    for _ in range(repeats):
        if before_each is not None:
            before_each()
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    return {"median": statistics.median(samples), "min": min(samples)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes for a smoke run")
    args = parser.parse_args()
    steps, runs, run_steps, turns, repeats = (500, 200, 20, 500, 3)
    if args.quick:
        steps, runs, run_steps, turns, repeats = (50, 20, 5, 50, 1)
    if not HAVE_LANGGRAPH:
        print(
            "LangGraph is not installed, so only Roost's side is measured. For the comparison:\n"
            "  .venv/bin/pip install langgraph langgraph-checkpoint-sqlite\n"
            "(benchmark-only peers, not Roost dependencies)",
            file=sys.stderr,
        )
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        results = {
            # fsync latency on a shared disk swings several-fold between runs: more tries
            "steps_full": bench_steps(tmp, steps, "FULL", 2 * repeats + 1),
            "steps_normal": bench_steps(tmp, steps, "NORMAL", repeats + 2),
            "concurrent": bench_concurrent(tmp, runs, run_steps, repeats),
            "thread": bench_thread(tmp, turns),
        }
    report = {
        "sizes": {"linear_steps": steps, "runs": runs, "run_steps": run_steps, "turns": turns},
        "python": platform.python_version(),
        "machine": platform.machine(),
        "langgraph": _langgraph_version(),
        "results": results,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    _print_table(results, report["sizes"])
    print(f"\nwrote {RESULTS}")


def _langgraph_version() -> str | None:
    if not HAVE_LANGGRAPH:
        return None
    from importlib.metadata import version

    return version("langgraph")


def _fmt(value: float | None, unit: str = "") -> str:
    return "-" if value is None else f"{value:,.2f}{unit}"


def _print_table(r: dict[str, dict[str, float]], sizes: dict[str, int]) -> None:
    steps, turns = sizes["linear_steps"], sizes["turns"]
    runs = f"{sizes['runs']} runs x {sizes['run_steps']} steps"
    rows = [
        (
            f"{steps}-step graph, us/step, SQLite FULL",
            r["steps_full"].get("roost_us_per_step"),
            r["steps_full"].get("langgraph_us_per_step"),
            r["steps_full"].get("ratio"),
            "<= 0.5x",
        ),
        (
            f"{steps}-step graph, us/step, SQLite NORMAL",
            r["steps_normal"].get("roost_us_per_step"),
            r["steps_normal"].get("langgraph_us_per_step"),
            r["steps_normal"].get("ratio"),
            "<= 0.5x",
        ),
        (
            f"{runs}, steps/s, memory",
            r["concurrent"].get("roost_memory_steps_per_s"),
            r["concurrent"].get("langgraph_memory_steps_per_s"),
            r["concurrent"].get("ratio_memory"),
            ">= 2x",
        ),
        (
            f"{runs}, steps/s, SQLite",
            r["concurrent"].get("roost_sqlite_steps_per_s"),
            r["concurrent"].get("langgraph_sqlite_steps_per_s"),
            r["concurrent"].get("ratio_sqlite"),
            ">= 2x",
        ),
        (
            f"{turns}-turn thread, stored / raw bytes",
            r["thread"].get("roost_storage_ratio"),
            r["thread"].get("langgraph_storage_ratio"),
            None,
            "<= 3x",
        ),
        (
            f"get_state at turn {turns}, median ms",
            r["thread"].get("roost_get_state_ms"),
            r["thread"].get("langgraph_get_state_ms"),
            None,
            "<= 2 ms",
        ),
        (
            f"get_state at turn {turns}, best ms",
            r["thread"].get("roost_get_state_min_ms"),
            r["thread"].get("langgraph_get_state_min_ms"),
            None,
            "<= 2 ms",
        ),
        (
            "get_state, no snapshot decoded yet, ms",
            r["thread"].get("roost_get_state_cold_ms"),
            None,
            None,
            "",
        ),
    ]
    print(f"{'metric':44} {'roost':>12} {'langgraph':>12} {'ratio':>8}  target")
    for name, ours, theirs, ratio, target in rows:
        print(f"{name:44} {_fmt(ours):>12} {_fmt(theirs):>12} {_fmt(ratio, 'x'):>8}  {target}")


if __name__ == "__main__":
    main()
