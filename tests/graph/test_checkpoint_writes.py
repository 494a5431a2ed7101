"""Checkpoint writes retry with the platform preset, then fail the run loudly."""

import operator
from collections.abc import Sequence
from typing import Annotated, TypedDict

import pytest

from roost.graph import START, CheckpointWriteFailed, MemoryCheckpointer, StateGraph
from roost.graph.checkpoint.base import CheckpointRecord, WriteRecord


class State(TypedDict):
    log: Annotated[list[str], operator.add]


class FlakyCheckpointer(MemoryCheckpointer):
    """Fails the first ``failures`` writes like a database that went away for a moment."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures

    def put(self, checkpoints: Sequence[CheckpointRecord], writes: Sequence[WriteRecord]) -> None:
        if self.failures > 0:
            self.failures -= 1
            raise ConnectionError("database restarting")
        super().put(checkpoints, writes)


def _graph(checkpointer: MemoryCheckpointer, clock):
    g = StateGraph(State)
    g.add_node("a", lambda s: {"log": ["a"]})
    g.add_edge(START, "a")
    return g.compile(checkpointer=checkpointer, clock=clock)


def test_transient_write_failures_are_retried(clock) -> None:
    saver = FlakyCheckpointer(failures=3)
    assert _graph(saver, clock).invoke({}, thread_id="t")["log"] == ["a"]
    assert clock.sleeps == [0.1, 0.2, 0.4]
    assert len(saver.load_all("t").checkpoints) == 2


async def test_persistent_write_failure_stops_the_run(clock) -> None:
    saver = FlakyCheckpointer(failures=100)
    with pytest.raises(CheckpointWriteFailed, match="could not persist"):
        await _graph(saver, clock).ainvoke({}, thread_id="t")
    assert len(clock.sleeps) == 5  # 5 retries, then the run fails instead of going on


def test_messages_stream_mode_reports_added_messages() -> None:
    from roost.graph import add_messages, stream_message

    class Chat(TypedDict):
        messages: Annotated[list, add_messages]

    def talk(state: Chat) -> dict:
        stream_message("tok", model="scripted")
        return {"messages": [{"role": "assistant", "content": "hello", "id": "m1"}]}

    g = StateGraph(Chat)
    g.add_node("talk", talk)
    g.add_edge(START, "talk")
    chunks = list(g.compile().stream({"messages": []}, stream_mode="messages"))
    assert chunks == [
        ("tok", {"node": "talk", "model": "scripted"}),
        ({"role": "assistant", "content": "hello", "id": "m1"}, {"node": "talk"}),
    ]
