"""Checkpointer conformance: every backend must pass these (memory, SQLite, PostgreSQL)."""

import itertools
import json
import operator
from typing import Annotated, TypedDict

import pytest

from roost.errors import InvalidRequest
from roost.graph import END, START, RemoveMessage, StateGraph, add_messages
from roost.graph.checkpoint.base import Checkpointer
from roost.graph.history import SNAPSHOT_EVERY


class Chat(TypedDict):
    messages: Annotated[list, add_messages]
    turns: Annotated[int, operator.add]
    last: str


def _chat_graph(checkpointer: Checkpointer, **kwargs):
    def reply(state: Chat) -> dict:
        text = state["messages"][-1]["content"]
        return {
            "messages": [{"role": "assistant", "content": f"echo {text}"}],
            "turns": 1,
            "last": text[:8],
        }

    g = StateGraph(Chat)
    g.add_node("reply", reply)
    g.add_edge(START, "reply")
    g.add_edge("reply", END)
    return g.compile(checkpointer=checkpointer, **kwargs)


def _say(graph, thread: str, text: str) -> dict:
    return graph.invoke({"messages": [{"role": "user", "content": text}]}, thread_id=thread)


def test_thread_state_survives_and_accumulates(checkpointer: Checkpointer) -> None:
    graph = _chat_graph(checkpointer)
    _say(graph, "t1", "hi")
    out = _say(graph, "t1", "again")
    assert [m["content"] for m in out["messages"]] == ["hi", "echo hi", "again", "echo again"]
    assert out["turns"] == 2
    state = graph.get_state("t1")
    assert state.values == out
    assert state.next == ()
    assert state.step == 2
    assert graph.get_state("other").values == {}


def test_history_is_newest_first_with_parent_links(checkpointer: Checkpointer) -> None:
    graph = _chat_graph(checkpointer)
    _say(graph, "t", "one")
    _say(graph, "t", "two")
    history = graph.get_state_history("t")
    assert [s.step for s in history] == [2, 1, 0, -1]
    assert [s.metadata["source"] for s in history] == ["loop", "input", "loop", "input"]
    for newer, older in itertools.pairwise(history):
        assert newer.parent_checkpoint_id == older.checkpoint_id
        assert newer.created_at >= older.created_at
    assert history[1].values["turns"] == 1
    assert [m["content"] for m in history[-1].values["messages"]] == ["one"]


def test_fork_from_an_old_checkpoint_keeps_the_original_branch(checkpointer: Checkpointer) -> None:
    graph = _chat_graph(checkpointer)
    _say(graph, "t", "one")
    _say(graph, "t", "two")
    after_first_input = graph.get_state_history("t")[-1]  # step -1: "one" waiting for reply
    assert after_first_input.next == ("reply",)

    forked = graph.invoke(None, thread_id="t", checkpoint_id=after_first_input.checkpoint_id)
    assert [m["content"] for m in forked["messages"]] == ["one", "echo one"]
    assert graph.get_state("t").values == forked  # newest checkpoint is on the fork
    # the original branch is intact and still readable
    original = [s for s in graph.get_state_history("t") if s.values.get("turns") == 2]
    assert [m["content"] for m in original[0].values["messages"]][-1] == "echo two"
    sources = [s.metadata["source"] for s in graph.get_state_history("t")]
    assert "fork" in sources


def test_update_state_as_node_and_continue(checkpointer: Checkpointer) -> None:
    graph = _chat_graph(checkpointer)
    _say(graph, "t", "one")
    new_id = graph.update_state("t", {"last": "edited", "turns": 10})
    state = graph.get_state("t")
    assert state.checkpoint_id == new_id
    assert state.values["last"] == "edited" and state.values["turns"] == 11
    assert state.metadata["source"] == "update"
    with pytest.raises(InvalidRequest, match="unknown state keys"):
        graph.update_state("t", {"nope": 1})

    # as_node="reply": the edit stands in for the reply node, so it does not run again
    history_before = len(graph.get_state_history("t"))
    graph.update_state(
        "t", {"messages": [{"role": "assistant", "content": "manual"}]}, as_node="reply"
    )
    assert graph.get_state("t").next == ()
    assert len(graph.get_state_history("t")) == history_before + 1


def test_checkpoint_id_that_does_not_exist_is_a_clear_error(checkpointer: Checkpointer) -> None:
    graph = _chat_graph(checkpointer)
    _say(graph, "t", "x")
    with pytest.raises(InvalidRequest, match="has no checkpoint 'nope'"):
        graph.get_state("t", "nope")


def test_message_history_is_stored_as_deltas(checkpointer: Checkpointer) -> None:
    graph = _chat_graph(checkpointer)
    for turn in range(3 * SNAPSHOT_EVERY):
        _say(graph, "t", f"{turn:03d}" + "x" * 400)
    log = checkpointer.load_all("t")
    raw = sum(len(json.dumps(m)) for m in graph.get_state("t").values["messages"])
    stored = sum(len(w.payload) for w in log.writes) + sum(
        len(c.snapshot or b"") for c in log.checkpoints
    )
    assert stored < 1.5 * raw  # a full copy per step would be ~N/2 times raw
    assert sum(1 for c in log.checkpoints if c.snapshot) >= 6  # segments, not full copies
    assert graph.get_state("t").values["turns"] == 3 * SNAPSHOT_EVERY


def test_rebuild_from_snapshots_matches_every_checkpoint(checkpointer: Checkpointer) -> None:
    graph = _chat_graph(checkpointer)
    for turn in range(SNAPSHOT_EVERY + 3):
        _say(graph, "t", str(turn))
    history = graph.get_state_history("t")
    # the newest state counts every turn; each older one counts one fewer per two checkpoints
    for snapshot in history:
        replies = sum(1 for m in snapshot.values["messages"] if m["role"] == "assistant")
        assert snapshot.values["turns"] == replies


def test_slice_load_rebuilds_the_same_state_as_the_full_log(checkpointer: Checkpointer) -> None:
    graph = _chat_graph(checkpointer)
    for turn in range(2 * SNAPSHOT_EVERY + 5):
        _say(graph, "t", str(turn))
    full = checkpointer.load_all("t")
    for record in full.checkpoints[:: SNAPSHOT_EVERY // 3]:
        part = checkpointer.load("t", "", record.checkpoint_id)
        assert len(part.checkpoints) < len(full.checkpoints)
        assert len(part.writes) <= 2 * SNAPSHOT_EVERY
        assert graph.get_state("t", record.checkpoint_id).values == next(
            s.values
            for s in graph.get_state_history("t")
            if s.checkpoint_id == record.checkpoint_id
        )
    assert checkpointer.load("t", "", "missing").checkpoints == []


def test_replaced_and_removed_messages_survive_snapshots(checkpointer: Checkpointer) -> None:
    graph = _chat_graph(checkpointer)
    for turn in range(SNAPSHOT_EVERY):
        _say(graph, "t", str(turn))
    first, second = graph.get_state("t").values["messages"][:2]
    graph.update_state(
        "t", {"messages": [{**first, "content": "edited"}, RemoveMessage(second["id"])]}
    )
    for turn in range(SNAPSHOT_EVERY):  # cross a snapshot that must store the full list
        _say(graph, "t", f"later {turn}")
    messages = graph.get_state("t").values["messages"]
    assert messages[0]["content"] == "edited"
    assert second["id"] not in {m["id"] for m in messages}
    assert len(messages) == 4 * SNAPSHOT_EVERY - 1
    messages[0]["content"] = "mutated by the caller"  # must not leak into later reads
    assert graph.get_state("t").values["messages"][0]["content"] == "edited"


def test_durability_modes_store_the_same_history(checkpointer: Checkpointer) -> None:
    for mode in ("sync", "async", "exit"):
        graph = _chat_graph(checkpointer, durability=mode)
        _say(graph, mode, "a")
        _say(graph, mode, "b")
        assert len(graph.get_state_history(mode)) == 4
        assert graph.get_state(mode).values["turns"] == 2


async def test_async_twins(checkpointer: Checkpointer) -> None:
    graph = _chat_graph(checkpointer)
    await graph.ainvoke({"messages": [{"role": "user", "content": "hi"}]}, thread_id="a")
    state = await graph.aget_state("a")
    assert state.values["turns"] == 1
    assert len(await graph.aget_state_history("a")) == 2
    await graph.aupdate_state("a", {"last": "x"})
    assert (await graph.aget_state("a")).values["last"] == "x"
    await checkpointer.adelete_thread("a")
    assert (await graph.aget_state("a")).values == {}


def test_threads_and_tenants_are_isolated(checkpointer: Checkpointer) -> None:
    graph = _chat_graph(checkpointer)
    _say(graph, "a", "for a")
    _say(graph, "b", "for b")
    checkpointer.delete_thread("a")
    assert graph.get_state("a").values == {}
    assert graph.get_state("b").values["last"] == "for b"[:8]
    original_tenant = checkpointer.tenant_id
    checkpointer.tenant_id = "someone-else"
    try:
        assert graph.get_state("b").values == {}
    finally:
        checkpointer.tenant_id = original_tenant


def test_exit_durability_writes_only_when_the_call_returns(checkpointer: Checkpointer) -> None:
    seen_during_run: list[int] = []

    def look(state: Chat) -> dict:
        seen_during_run.append(len(checkpointer.load_all("t").checkpoints))
        return {"turns": 1}

    g = StateGraph(Chat)
    g.add_node("look", look)
    g.add_node("again", look)
    g.add_edge(START, "look")
    g.add_edge("look", "again")
    g.compile(checkpointer=checkpointer, durability="exit").invoke({"turns": 0}, thread_id="t")
    assert seen_during_run == [0, 0]
    assert len(checkpointer.load_all("t").checkpoints) == 3
    g.compile(checkpointer=checkpointer, durability="sync").invoke({"turns": 0}, thread_id="t")
    assert seen_during_run[2:] == [4, 5]  # sync: each step is stored before the next runs


def test_prepare_records_input_without_running(checkpointer: Checkpointer) -> None:
    graph = _chat_graph(checkpointer)
    graph.prepare({"messages": [{"role": "user", "content": "queued"}]}, thread_id="t")
    state = graph.get_state("t")
    assert state.next == ("reply",)
    assert state.values["turns"] == 0
    assert graph.invoke(None, thread_id="t")["last"] == "queued"
    kinds = [w.kind for w in checkpointer.load_all("t").writes]
    assert sorted(kinds) == ["input", "run", "writes"]  # input, the call that ran it, the node
