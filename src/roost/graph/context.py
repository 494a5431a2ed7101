"""What a running node can reach: ``interrupt`` and the stream writer.

The runner sets a :class:`TaskContext` in a context variable around each node call
(threads get a copy of the context), so node code needs no extra parameters.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from roost.graph.types import Interrupt


class GraphInterrupt(Exception):
    """Raised inside a node by :func:`interrupt`; the runner pauses the thread."""

    def __init__(self, interrupts: tuple[Interrupt, ...]) -> None:
        super().__init__(interrupts)
        self.interrupts = interrupts


@dataclass(slots=True)
class TaskContext:
    """Per-task facts that helpers called from node code need."""

    task_id: str
    node: str
    interrupt_prefix: str
    """Stable across re-runs of this task (and across forks of its checkpoint)."""
    resume: Mapping[str, Any]
    emit: Callable[[str, Any], None]
    subgraph: Any = None
    """Checkpointer, thread and namespace a nested graph run inherits."""
    num_interrupts: int = field(default=0)


CURRENT_TASK: ContextVar[TaskContext | None] = ContextVar("roost_graph_task", default=None)


def interrupt_id(prefix: str, index: int) -> str:
    return hashlib.blake2b(f"{prefix}|{index}".encode(), digest_size=12).hexdigest()


def interrupt(value: Any) -> Any:
    """Pause the run and ask the caller for input; returns the answer on resume.

    The first call raises a pause carrying ``value``; the caller answers with
    ``graph.invoke(Command(resume=answer), thread_id=...)`` and the node runs again
    *from its start*, this time getting ``answer`` back from the same call. Code
    before an ``interrupt`` therefore runs twice: keep side effects after it or make
    them idempotent. Several calls in one node are matched by their order.
    """
    task = CURRENT_TASK.get()
    if task is None:
        raise RuntimeError("interrupt() can only be called inside a running graph node")
    index = task.num_interrupts
    task.num_interrupts += 1
    key = interrupt_id(task.interrupt_prefix, index)
    if key in task.resume:
        return task.resume[key]
    raise GraphInterrupt((Interrupt(id=key, value=value),))


def get_stream_writer() -> Callable[[Any], None]:
    """A function that sends data to ``stream(..., stream_mode="custom")`` consumers."""
    task = CURRENT_TASK.get()
    if task is None:
        return lambda _data: None
    emit = task.emit
    return lambda data: emit("custom", data)


def stream_message(chunk: Any, **metadata: Any) -> None:
    """Send a message or token chunk to ``stream_mode="messages"`` consumers (LLM layer hook)."""
    task = CURRENT_TASK.get()
    if task is not None:
        task.emit("messages", (chunk, {"node": task.node, **metadata}))
