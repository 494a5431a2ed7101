import operator
from typing import Annotated, TypedDict

import pytest

from roost.graph import END, START, InvalidUpdate, RemoveMessage, StateGraph, add_messages
from roost.graph.channels import BinaryOperatorAggregate, LastValue, MessagesChannel, Topic
from roost.graph.schema import channels_from_schema


class State(TypedDict):
    messages: Annotated[list, add_messages]
    count: Annotated[int, operator.add]
    items: Annotated[list[str], operator.add]
    best: Annotated[int, max]
    route: str


def test_schema_maps_annotations_to_channels() -> None:
    channels = channels_from_schema(State)
    assert isinstance(channels["messages"], MessagesChannel)
    assert isinstance(channels["count"], BinaryOperatorAggregate)
    assert channels["count"].get() == 0
    assert isinstance(channels["items"], Topic)
    assert isinstance(channels["route"], LastValue)
    assert not channels["route"].is_set()


def test_add_messages_appends_replaces_by_id_and_removes() -> None:
    history = [
        {"role": "user", "content": "hi", "id": "1"},
        {"role": "ai", "content": "yo", "id": "2"},
    ]
    merged = add_messages(
        history, [{"role": "ai", "content": "hello", "id": "2"}, {"role": "user", "content": "q"}]
    )
    assert [m["content"] for m in merged] == ["hi", "hello", "q"]
    assert merged[2]["id"]  # a fresh id was assigned
    assert [m["id"] for m in add_messages(merged, RemoveMessage("1"))] == ["2", merged[2]["id"]]
    assert history[1]["content"] == "yo"  # the input list is not mutated


def test_remove_unknown_message_is_an_error() -> None:
    with pytest.raises(ValueError, match="no message has that id"):
        add_messages([], [RemoveMessage("nope")])


def _parallel_graph(first: dict, second: dict) -> StateGraph:
    g = StateGraph(State)
    g.add_node("a", lambda s: first)
    g.add_node("b", lambda s: second)
    g.add_edge(START, "a")
    g.add_edge(START, "b")
    g.add_edge("a", END)
    return g


def test_reducers_combine_parallel_writes_in_task_order() -> None:
    graph = _parallel_graph(
        {
            "count": 2,
            "items": ["a"],
            "best": 3,
            "messages": {"role": "ai", "content": "A", "id": "a"},
        },
        {
            "count": 5,
            "items": ["b1", "b2"],
            "best": 1,
            "messages": [{"role": "ai", "content": "B", "id": "b"}],
        },
    ).compile()
    out = graph.invoke({"count": 1, "best": 2})
    assert out["count"] == 8
    assert out["items"] == ["a", "b1", "b2"]
    assert out["best"] == 3
    assert [m["content"] for m in out["messages"]] == ["A", "B"]


def test_two_writes_to_a_last_value_key_in_one_step_fail_clearly() -> None:
    graph = _parallel_graph({"route": "x"}, {"route": "y"}).compile()
    with pytest.raises(InvalidUpdate, match="'route' received 2 writes"):
        graph.invoke({})


def test_unknown_key_in_update_names_node_and_key() -> None:
    g = StateGraph(State)
    g.add_node("bad", lambda s: {"nope": 1})
    g.add_edge(START, "bad")
    with pytest.raises(InvalidUpdate, match="'bad' wrote unknown state key 'nope'"):
        g.compile().invoke({})
