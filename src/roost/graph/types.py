"""Value types that cross the graph's public API: Send, Command, Interrupt, snapshots."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

START = "__start__"
"""The virtual node a graph's input comes from: ``add_edge(START, "first")``."""
END = "__end__"
"""The virtual node that ends a path: ``add_edge("last", END)``."""

StreamMode = Literal["values", "updates", "events", "messages", "custom"]
Durability = Literal["sync", "async", "exit"]


@dataclass(frozen=True, slots=True)
class Send:
    """Run ``node`` in the next superstep with ``arg`` as its input instead of the state.

    Return a list of these from a node or a conditional edge to fan out to any
    number of parallel tasks (map-reduce); their updates meet in the reducers.
    """

    node: str
    arg: Any


@dataclass(frozen=True, slots=True)
class Command:
    """What a node returns to update state and choose where to go, or what a caller
    passes to resume interrupted work.

    - ``update``: a partial state update, like a node's plain return value.
    - ``goto``: node name(s) or ``Send``(s) to run next, in addition to static edges.
    - ``resume``: the answer to a pending ``interrupt``; a mapping of interrupt id to
      value answers several at once.
    """

    update: dict[str, Any] | None = None
    goto: str | Send | Sequence[str | Send] = ()
    resume: Any = None


@dataclass(frozen=True, slots=True)
class Interrupt:
    """A pause requested by a node through :func:`interrupt`; answer it with
    ``Command(resume={interrupt.id: value})``."""

    id: str
    value: Any


@dataclass(frozen=True, slots=True)
class TaskInfo:
    """A task planned at a checkpoint that has not finished yet (or failed)."""

    id: str
    name: str
    error: str | None = None
    interrupts: tuple[Interrupt, ...] = ()
    state: StateSnapshot | None = None
    """The subgraph's own snapshot when this task is a subgraph (``get_state(subgraphs=True)``)."""


@dataclass(frozen=True, slots=True)
class StateSnapshot:
    """The state of a thread at one checkpoint."""

    values: dict[str, Any]
    next: tuple[str, ...]
    """Names of the nodes that will run when the thread continues."""
    tasks: tuple[TaskInfo, ...]
    interrupts: tuple[Interrupt, ...]
    """Interrupts waiting for an answer at this checkpoint."""
    checkpoint_id: str | None
    parent_checkpoint_id: str | None
    created_at: float | None
    step: int
    metadata: dict[str, Any] = field(default_factory=dict)
