"""Interrupts, forks and manual updates together, on every backend."""

import operator
from typing import Annotated, TypedDict

from roost.graph import END, START, Command, Send, StateGraph, interrupt
from roost.graph.checkpoint.base import Checkpointer


class Review(TypedDict):
    docs: list[str]
    verdicts: Annotated[list[str], operator.add]
    summary: str


def _review_graph(checkpointer: Checkpointer, runs: list[str]):
    def fan_out(state: Review) -> list[Send]:
        return [Send("review", doc) for doc in state["docs"]]

    async def review(doc: str) -> dict:
        runs.append(doc)
        verdict = interrupt({"doc": doc})
        return {"verdicts": [f"{doc}:{verdict}"]}

    def summarize(state: Review) -> dict:
        return {"summary": ",".join(sorted(state["verdicts"]))}

    g = StateGraph(Review)
    g.add_node("fan_out", fan_out)
    g.add_node("review", review)
    g.add_node("summarize", summarize)
    g.add_edge(START, "fan_out")
    g.add_edge("review", "summarize")
    g.add_edge("summarize", END)
    return g.compile(checkpointer=checkpointer)


async def test_send_tasks_interrupt_independently_and_resume_by_id(
    checkpointer: Checkpointer,
) -> None:
    runs: list[str] = []
    graph = _review_graph(checkpointer, runs)
    out = await graph.ainvoke({"docs": ["a", "b", "c"]}, thread_id="t")
    ids = {i.value["doc"]: i.id for i in out["__interrupt__"]}
    assert sorted(ids) == ["a", "b", "c"]

    out = await graph.ainvoke(Command(resume={ids["a"]: "ok", ids["c"]: "no"}), thread_id="t")
    assert [i.id for i in out["__interrupt__"]] == [ids["b"]]
    out = await graph.ainvoke(Command(resume={ids["b"]: "ok"}), thread_id="t")
    assert out["summary"] == "a:ok,b:ok,c:no"
    assert sorted(runs) == ["a", "a", "b", "b", "b", "c", "c"]


async def test_fork_before_an_answer_asks_again_with_the_same_id(
    checkpointer: Checkpointer,
) -> None:
    runs: list[str] = []
    graph = _review_graph(checkpointer, runs)
    first = await graph.ainvoke({"docs": ["a"]}, thread_id="t")
    (question,) = first["__interrupt__"]
    paused_at = (await graph.aget_state("t")).checkpoint_id
    done = await graph.ainvoke(Command(resume="ok"), thread_id="t")
    assert done["summary"] == "a:ok"

    # Travel back to the paused checkpoint: the fork asks the same question again...
    forked = await graph.ainvoke(None, thread_id="t", checkpoint_id=paused_at)
    assert [i.id for i in forked["__interrupt__"]] == [question.id]
    # ...and a different answer leads to a different ending on the new branch.
    redone = await graph.ainvoke(Command(resume="rejected"), thread_id="t")
    assert redone["summary"] == "a:rejected"
    summaries = {s.values.get("summary") for s in await graph.aget_state_history("t")}
    assert {"a:ok", "a:rejected"} <= summaries


def test_update_state_as_the_interrupted_node_skips_it(checkpointer: Checkpointer) -> None:
    class Flow(TypedDict):
        answer: str
        after: Annotated[list[str], operator.add]

    def ask(state: Flow) -> dict:
        return {"answer": interrupt("name?")}

    g = StateGraph(Flow)
    g.add_node("ask", ask)
    g.add_node("greet", lambda s: {"after": [f"hi {s['answer']}"]})
    g.add_edge(START, "ask")
    g.add_edge("ask", "greet")
    graph = g.compile(checkpointer=checkpointer)
    graph.invoke({}, thread_id="t")
    assert graph.get_state("t").next == ("ask",)
    graph.update_state("t", {"answer": "Ada"}, as_node="ask")
    state = graph.get_state("t")
    assert state.next == ("greet",)
    assert state.interrupts == ()
    assert graph.invoke(None, thread_id="t")["after"] == ["hi Ada"]
