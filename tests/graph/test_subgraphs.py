import operator
from typing import Annotated, TypedDict

from roost.graph import END, START, Command, StateGraph, add_messages, interrupt


class Parent(TypedDict):
    messages: Annotated[list, add_messages]
    count: Annotated[int, operator.add]
    status: str


class Child(TypedDict):
    messages: Annotated[list, add_messages]
    count: Annotated[int, operator.add]
    draft: str


def _child(ask: bool):
    def write(state: Child) -> dict:
        return {"draft": "v1", "count": 1, "messages": [{"role": "ai", "content": "drafted"}]}

    def review(state: Child) -> dict:
        verdict = interrupt({"draft": state["draft"]}) if ask else "ok"
        return {"count": 1, "messages": [{"role": "ai", "content": f"review {verdict}"}]}

    g = StateGraph(Child)
    g.add_node("write", write)
    g.add_node("review", review)
    g.add_edge(START, "write")
    g.add_edge("write", "review")
    g.add_edge("review", END)
    return g.compile()


def _parent(ask: bool, checkpointer=None):
    g = StateGraph(Parent)
    g.add_node("plan", lambda s: {"count": 1, "messages": [{"role": "user", "content": "go"}]})
    g.add_node("team", _child(ask))
    g.add_node("finish", lambda s: {"status": f"done after {s['count']}"})
    g.add_edge(START, "plan")
    g.add_edge("plan", "team")
    g.add_edge("team", "finish")
    return g.compile(checkpointer=checkpointer)


def test_subgraph_updates_flow_through_parent_reducers_once() -> None:
    out = _parent(ask=False).invoke({"count": 0})
    assert out["count"] == 3  # plan 1 + write 1 + review 1: not the child's total added again
    assert [m["content"] for m in out["messages"]] == ["go", "drafted", "review ok"]
    assert out["status"] == "done after 3"
    assert "draft" not in out  # child-only keys stay in the child


def test_interrupt_inside_subgraph_shows_child_state_and_resumes(checkpointer) -> None:
    graph = _parent(ask=True, checkpointer=checkpointer)
    out = graph.invoke({"count": 0}, thread_id="t")
    (pending,) = out["__interrupt__"]
    assert pending.value == {"draft": "v1"}

    state = graph.get_state("t", subgraphs=True)
    assert state.next == ("team",)
    child = state.tasks[0].state
    assert child is not None
    assert child.values["draft"] == "v1"
    assert child.next == ("review",)
    assert [i.id for i in child.interrupts] == [pending.id]

    out = graph.invoke(Command(resume="approved"), thread_id="t")
    assert out["count"] == 3
    assert [m["content"] for m in out["messages"]] == ["go", "drafted", "review approved"]
    assert out["status"] == "done after 3"


async def test_async_subgraph_resumes_after_interrupt(checkpointer) -> None:
    graph = _parent(ask=True, checkpointer=checkpointer)
    out = await graph.ainvoke({"count": 0}, thread_id="t")
    assert out["__interrupt__"][0].value == {"draft": "v1"}
    out = await graph.ainvoke(Command(resume="fine"), thread_id="t")
    assert out["count"] == 3
    assert out["messages"][-1]["content"] == "review fine"
    namespaces = await checkpointer.alist_namespaces("t")
    assert namespaces[0] == "" and namespaces[1].startswith("team:")
