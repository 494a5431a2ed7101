import asyncio
import operator
import threading
from typing import Annotated, TypedDict

import pytest

from roost.graph import (
    END,
    START,
    Command,
    GraphRecursionError,
    InvalidGraph,
    InvalidUpdate,
    NodeTimeout,
    RetryPolicy,
    Send,
    StateGraph,
    get_stream_writer,
)


class State(TypedDict):
    log: Annotated[list[str], operator.add]
    n: int
    topic: str
    results: Annotated[list[str], operator.add]


def step(name: str):
    return lambda state: {"log": [name]}


def test_sequential_runs_nodes_in_order() -> None:
    g = StateGraph(State)
    for name in ("a", "b", "c"):
        g.add_node(name, step(name))
    g.add_edge(START, "a")
    g.add_edge("a", "b")
    g.add_edge("b", "c")
    g.add_edge("c", END)
    assert g.compile().invoke({"log": []})["log"] == ["a", "b", "c"]


def test_fan_in_waits_for_all_sources() -> None:
    g = StateGraph(State)
    g.add_node("split", step("split"))
    g.add_node("fast", step("fast"))
    g.add_node("slow1", step("slow1"))
    g.add_node("slow2", step("slow2"))
    g.add_node("join", step("join"))
    g.add_edge(START, "split")
    g.add_edge("split", "fast")
    g.add_edge("split", "slow1")
    g.add_edge("slow1", "slow2")
    g.add_edge(["fast", "slow2"], "join")
    log = g.compile().invoke({})["log"]
    assert log.count("join") == 1
    assert log[-1] == "join"  # ran only after slow2, two steps after fast


def test_parallel_sync_nodes_run_concurrently() -> None:
    barrier = threading.Barrier(2, timeout=5)

    def meet(name: str):
        def node(state: State) -> dict:
            barrier.wait()  # both must be running at once, or this times out
            return {"log": [name]}

        return node

    g = StateGraph(State)
    g.add_node("a", meet("a"))
    g.add_node("b", meet("b"))
    g.add_edge(START, "a")
    g.add_edge(START, "b")
    assert sorted(g.compile().invoke({})["log"]) == ["a", "b"]


async def test_parallel_async_nodes_run_concurrently() -> None:
    a_started, b_started = asyncio.Event(), asyncio.Event()

    async def a(state: State) -> dict:
        a_started.set()
        await asyncio.wait_for(b_started.wait(), 5)
        return {"log": ["a"]}

    async def b(state: State) -> dict:
        b_started.set()
        await asyncio.wait_for(a_started.wait(), 5)
        return {"log": ["b"]}

    g = StateGraph(State)
    g.add_node("a", a)
    g.add_node("b", b)
    g.add_edge(START, "a")
    g.add_edge(START, "b")
    assert (await g.compile().ainvoke({}))["log"] == ["a", "b"]  # task order, not finish order


def test_conditional_edges_route_through_path_map() -> None:
    g = StateGraph(State)
    g.add_node("evaluate", lambda s: {"log": ["evaluate"]})
    g.add_node("handler_a", step("handler_a"))
    g.add_node("default", step("default"))
    g.add_edge(START, "evaluate")
    g.add_conditional_edges(
        "evaluate", lambda s: s["topic"], {"A": "handler_a", "other": "default"}
    )
    graph = g.compile()
    assert graph.invoke({"topic": "A"})["log"] == ["evaluate", "handler_a"]
    assert graph.invoke({"topic": "other"})["log"] == ["evaluate", "default"]
    with pytest.raises(InvalidGraph, match="not in its path map"):
        graph.invoke({"topic": "zzz"})


def test_route_sees_the_nodes_own_update() -> None:
    g = StateGraph(State)
    g.add_node("count", lambda s: {"n": s["n"] + 1})
    g.add_edge(START, "count")
    g.add_conditional_edges("count", lambda s: END if s["n"] >= 3 else "count")
    assert g.compile().invoke({"n": 0})["n"] == 3


def test_send_fans_out_map_reduce() -> None:
    g = StateGraph(State)
    g.add_node("split", lambda s: [Send("work", f"part{i}") for i in range(4)])
    g.add_node("work", lambda part: {"results": [part.upper()]})
    g.add_node("reduce", lambda s: {"log": [",".join(s["results"])]})
    g.add_edge(START, "split")
    g.add_edge("work", "reduce")
    out = g.compile().invoke({})
    assert out["results"] == ["PART0", "PART1", "PART2", "PART3"]
    assert out["log"] == ["PART0,PART1,PART2,PART3"]


def test_command_updates_and_jumps() -> None:
    g = StateGraph(State)
    g.add_node("start", lambda s: Command(update={"log": ["start"]}, goto="finish"))
    g.add_node("skipped", step("skipped"))
    g.add_node("finish", step("finish"))
    g.add_edge(START, "start")
    assert g.compile().invoke({})["log"] == ["start", "finish"]


def test_recursion_limit_names_the_limit() -> None:
    g = StateGraph(State)
    g.add_node("spin", step("spin"))
    g.add_edge(START, "spin")
    g.add_edge("spin", "spin")
    with pytest.raises(GraphRecursionError, match="recursion_limit of 7 supersteps"):
        g.compile().invoke({}, recursion_limit=7)


def test_retry_waits_follow_the_llm_preset(clock) -> None:
    calls = []

    def flaky(state: State) -> dict:
        calls.append(1)
        if len(calls) < 4:
            raise ConnectionError("provider down")
        return {"log": ["ok"]}

    g = StateGraph(State)
    g.add_node("llm", flaky, retry=RetryPolicy.llm())
    g.add_edge(START, "llm")
    assert g.compile(clock=clock).invoke({})["log"] == ["ok"]
    assert clock.sleeps == [1.0, 2.0, 4.0]


async def test_retry_gives_up_after_max_attempts_and_skips_bugs(clock) -> None:
    attempts = {"io": 0, "bug": 0}

    async def io(state: State) -> dict:
        attempts["io"] += 1
        raise ConnectionError("still down")

    def bug(state: State) -> dict:
        attempts["bug"] += 1
        raise ValueError("bad code")

    for name, fn in (("io", io), ("bug", bug)):
        g = StateGraph(State)
        g.add_node(name, fn, retry=RetryPolicy.tool())
        g.add_edge(START, name)
        with pytest.raises((ConnectionError, ValueError)):
            await g.compile(clock=clock).ainvoke({})
    assert attempts == {"io": 3, "bug": 1}
    assert clock.sleeps == [0.5, 0.5]


def test_retry_presets_match_the_failure_table() -> None:
    memory = RetryPolicy.memory_query()
    assert (memory.max_attempts, memory.delay(1), memory.delay(2)) == (3, 0.1, 0.1)
    write = RetryPolicy.checkpoint_write()
    assert write.max_attempts == 6
    assert [write.delay(i) for i in (1, 2, 3)] == [0.1, 0.2, 0.4]


async def test_node_timeout_stops_a_hung_async_node(clock) -> None:
    async def hang(state: State) -> dict:
        await asyncio.Event().wait()
        return {}

    g = StateGraph(State)
    g.add_node("hang", hang, timeout=0.05, retry=RetryPolicy(max_attempts=2, jitter=False))
    g.add_edge(START, "hang")
    with pytest.raises(NodeTimeout, match=r"'hang' took longer than its 0\.05s timeout"):
        await g.compile(clock=clock).ainvoke({})
    assert clock.sleeps == [0.5]  # a timeout is transient: retried once


def test_node_timeout_applies_to_sync_nodes() -> None:
    release = threading.Event()
    g = StateGraph(State)
    g.add_node("hang", lambda s: release.wait(5) and {}, timeout=0.05)
    g.add_edge(START, "hang")
    try:
        with pytest.raises(NodeTimeout):
            g.compile().invoke({})
    finally:
        release.set()


def test_stream_modes() -> None:
    def talk(state: State) -> dict:
        get_stream_writer()({"progress": 50})
        return {"log": ["talk"]}

    g = StateGraph(State)
    g.add_node("talk", talk)
    g.add_edge(START, "talk")
    graph = g.compile()
    assert list(graph.stream({"n": 1}, stream_mode="updates")) == [{"talk": {"log": ["talk"]}}]
    assert list(graph.stream({"n": 1}, stream_mode="values")) == [
        {"n": 1, "log": [], "results": []},
        {"n": 1, "log": ["talk"], "results": []},
    ]
    both = list(graph.stream({}, stream_mode=["custom", "updates"]))
    assert both == [("custom", {"progress": 50}), ("updates", {"talk": {"log": ["talk"]}})]
    events = [e["event"] for e in graph.stream({}, stream_mode="events")]
    assert events == ["checkpoint", "task_start", "task_end", "checkpoint"]


async def test_astream_delivers_custom_events_while_the_node_runs() -> None:
    release = asyncio.Event()

    async def slow(state: State) -> dict:
        get_stream_writer()("working")
        await asyncio.wait_for(release.wait(), 5)
        return {"log": ["done"]}

    g = StateGraph(State)
    g.add_node("slow", slow)
    g.add_edge(START, "slow")
    seen = []
    async for _mode, payload in g.compile().astream({}, stream_mode=["custom", "updates"]):
        seen.append(payload)
        if payload == "working":
            release.set()  # only possible if the event arrived before the node finished
    assert seen == ["working", {"slow": {"log": ["done"]}}]


def test_invalid_graphs_are_rejected_at_compile() -> None:
    g = StateGraph(State)
    g.add_node("a", step("a"))
    with pytest.raises(InvalidGraph, match="no entry point"):
        g.compile()
    g.add_edge(START, "a")
    g.add_edge("a", "ghost")
    with pytest.raises(InvalidGraph, match="unknown node 'ghost'"):
        g.compile()


def test_sync_invoke_and_stream_run_graphs_with_async_nodes() -> None:
    async def fetch(state: State) -> dict:
        await asyncio.sleep(0)
        return {"log": ["fetched"]}

    g = StateGraph(State)
    g.add_node("fetch", fetch)
    g.add_node("after", step("after"))
    g.add_edge(START, "fetch")
    g.add_edge("fetch", "after")
    graph = g.compile()
    assert graph.invoke({})["log"] == ["fetched", "after"]
    assert list(graph.stream({}, stream_mode="updates")) == [
        {"fetch": {"log": ["fetched"]}},
        {"after": {"log": ["after"]}},
    ]


def test_unknown_input_key_is_reported_as_input() -> None:
    g = StateGraph(State)
    g.add_node("a", step("a"))
    g.add_edge(START, "a")
    with pytest.raises(InvalidUpdate, match="the graph input wrote unknown state key 'oops'"):
        g.compile().invoke({"oops": 1})
