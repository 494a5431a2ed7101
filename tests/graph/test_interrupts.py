import operator
from typing import Annotated, TypedDict

import pytest

from roost.errors import InvalidRequest
from roost.graph import END, START, Command, MemoryCheckpointer, StateGraph, interrupt


class State(TypedDict):
    answers: Annotated[list[str], operator.add]
    side_effects: Annotated[list[str], operator.add]


def _approval_graph(runs: dict[str, int]) -> StateGraph:
    def ask(question: str):
        def node(state: State) -> dict:
            runs[question] = runs.get(question, 0) + 1
            answer = interrupt({"question": question})
            return {"answers": [f"{question}={answer}"]}

        return node

    g = StateGraph(State)
    g.add_node("ask_budget", ask("budget"))
    g.add_node("ask_deadline", ask("deadline"))
    g.add_node("done", lambda s: {"side_effects": ["sent"]})
    g.add_edge(START, "ask_budget")
    g.add_edge(START, "ask_deadline")
    g.add_edge(["ask_budget", "ask_deadline"], "done")
    g.add_edge("done", END)
    return g


def test_two_pending_interrupts_are_resumed_by_id() -> None:
    runs: dict[str, int] = {}
    graph = _approval_graph(runs).compile(checkpointer=MemoryCheckpointer())
    out = graph.invoke({}, thread_id="t")
    pending = {i.value["question"]: i.id for i in out["__interrupt__"]}
    assert set(pending) == {"budget", "deadline"}
    state = graph.get_state("t")
    assert state.next == ("ask_budget", "ask_deadline")
    assert {i.id for i in state.interrupts} == set(pending.values())

    with pytest.raises(InvalidRequest, match="2 unanswered interrupts"):
        graph.invoke(Command(resume="yes"), thread_id="t")

    out = graph.invoke(Command(resume={pending["budget"]: "10k"}), thread_id="t")
    assert [i.id for i in out["__interrupt__"]] == [pending["deadline"]]
    assert graph.get_state("t").next == ("ask_deadline",)
    # the answered node finished; only the unanswered one is pending and re-ran
    assert runs == {"budget": 2, "deadline": 2}

    out = graph.invoke(Command(resume={pending["deadline"]: "friday"}), thread_id="t")
    assert "__interrupt__" not in out
    assert sorted(out["answers"]) == ["budget=10k", "deadline=friday"]
    assert out["side_effects"] == ["sent"]
    assert runs == {"budget": 2, "deadline": 3}  # budget did not re-run after its answer


def test_answered_interrupt_never_fires_again_and_bare_resume_works() -> None:
    calls: list[str] = []

    def node(state: State) -> dict:
        first = interrupt("first?")
        calls.append(first)
        second = interrupt("second?")
        return {"answers": [first, second]}

    g = StateGraph(State)
    g.add_node("two_questions", node)
    g.add_edge(START, "two_questions")
    graph = g.compile(checkpointer=MemoryCheckpointer())
    assert graph.invoke({}, thread_id="t")["__interrupt__"][0].value == "first?"
    out = graph.invoke(Command(resume="A"), thread_id="t")
    assert [i.value for i in out["__interrupt__"]] == ["second?"]
    out = graph.invoke(Command(resume="B"), thread_id="t")
    assert out["answers"] == ["A", "B"]
    assert calls == ["A", "A"]  # code after the first interrupt re-ran once, as documented
    assert graph.get_state("t").interrupts == ()
    # continuing the finished thread does nothing: no question comes back
    assert "__interrupt__" not in graph.invoke(None, thread_id="t")


def test_resume_without_pending_interrupt_is_an_error() -> None:
    g = StateGraph(State)
    g.add_node("n", lambda s: {})
    g.add_edge(START, "n")
    graph = g.compile(checkpointer=MemoryCheckpointer())
    graph.invoke({}, thread_id="t")
    with pytest.raises(InvalidRequest, match="0 unanswered interrupts"):
        graph.invoke(Command(resume="x"), thread_id="t")
