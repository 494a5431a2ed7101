"""Graph workflows with durable, event-sourced checkpoints.

Build a :class:`StateGraph`, ``compile()`` it (optionally with a checkpointer),
then ``invoke``/``stream`` it. See docs/graph.md.
"""

from roost.graph.checkpoint import (
    Checkpointer,
    MemoryCheckpointer,
    PostgresCheckpointer,
    SqliteCheckpointer,
)
from roost.graph.compiled import CompiledGraph
from roost.graph.context import get_stream_writer, interrupt, stream_message
from roost.graph.errors import (
    CheckpointWriteFailed,
    GraphRecursionError,
    InvalidGraph,
    InvalidUpdate,
    NodeTimeout,
)
from roost.graph.messages import RemoveMessage, add_messages
from roost.graph.retry import RetryPolicy
from roost.graph.state import StateGraph
from roost.graph.types import END, START, Command, Interrupt, Send, StateSnapshot, TaskInfo

__all__ = [
    "END",
    "START",
    "CheckpointWriteFailed",
    "Checkpointer",
    "Command",
    "CompiledGraph",
    "GraphRecursionError",
    "Interrupt",
    "InvalidGraph",
    "InvalidUpdate",
    "MemoryCheckpointer",
    "NodeTimeout",
    "PostgresCheckpointer",
    "RemoveMessage",
    "RetryPolicy",
    "Send",
    "SqliteCheckpointer",
    "StateGraph",
    "StateSnapshot",
    "TaskInfo",
    "add_messages",
    "get_stream_writer",
    "interrupt",
    "stream_message",
]
