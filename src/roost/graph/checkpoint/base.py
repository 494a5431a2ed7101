"""The ``Checkpointer`` protocol: where a thread's event log and snapshots live.

A thread's history is a tree of checkpoints (forks branch it). Each checkpoint
records the superstep it ends and, every few steps, a snapshot of the
constant-size channels. Everything else is events: the writes each finished task
made, errors, interrupts, resume answers, inputs and manual updates. State at a
checkpoint is the nearest snapshot plus the events after it, folded through the
channels' reducers (see :mod:`roost.graph.history`). Backends only store and
return records; they know nothing about graphs.
"""

from __future__ import annotations

import itertools
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

CheckpointSource = Literal["input", "loop", "update", "fork"]
WriteKind = Literal["run", "writes", "error", "interrupt", "resume", "input", "update"]

_ids = itertools.count()


def new_checkpoint_id() -> str:
    """A 21-character id that sorts by creation time: microseconds, a per-process
    counter, then randomness that separates processes writing in the same microsecond."""
    return f"{time.time_ns() // 1000:013x}{next(_ids) & 0xFFFF:04x}{random.getrandbits(16):04x}"


@dataclass(frozen=True, slots=True)
class CheckpointRecord:
    """One node of a thread's checkpoint tree."""

    thread_id: str
    ns: str
    checkpoint_id: str
    parent_id: str | None
    step: int
    source: CheckpointSource
    created_at: float
    snapshot_id: str
    """The nearest checkpoint at or before this one (on its path) that holds a snapshot."""
    snapshot: bytes | None = None
    """Constant-size channels, control state and the segments appended to delta-logged
    channels since ``base_id``'s snapshot; None means: rebuild from events."""
    base_id: str | None = None
    """For a snapshot: the previous snapshot on the path, whose segments come before."""
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class WriteRecord:
    """One event of a thread's log, attached to the checkpoint it happened at.

    ``kind="writes"``/``"error"``/``"interrupt"`` belong to the task ``task_id`` planned
    at ``checkpoint_id``; ``"resume"`` carries answers given at that checkpoint;
    ``"input"``/``"update"`` are the writes that created ``checkpoint_id`` itself;
    ``"run"`` marks a call that started running the thread from ``checkpoint_id``.
    A (checkpoint, task, kind) triple is unique: a re-run of a task replaces its record.
    """

    thread_id: str
    ns: str
    checkpoint_id: str
    snapshot_id: str
    """The ``snapshot_id`` of the checkpoint this event is attached to (for slice loading)."""
    task_id: str
    kind: WriteKind
    idx: int
    node: str
    payload: bytes
    created_at: float


@dataclass(frozen=True, slots=True)
class ThreadLog:
    """Records of one thread namespace, oldest checkpoint first: all of them
    (``load_all``) or the slice that rebuilds one checkpoint (``load``)."""

    checkpoints: list[CheckpointRecord]
    writes: list[WriteRecord]
    has_children: bool | None = None
    """Whether the slice's target checkpoint has children; None: work it out from ``checkpoints``."""


def slice_log(log: ThreadLog, checkpoint_id: str | None) -> ThreadLog:
    """The part of a full log that :meth:`Checkpointer.load` returns (reference semantics).

    The target checkpoint (newest when None), every checkpoint sharing its nearest
    snapshot, every snapshot of the namespace (their ``base_id`` chain carries the
    delta-logged channels), and the events attached to that snapshot's checkpoints.
    """
    if not log.checkpoints:
        return ThreadLog([], [], False)
    if checkpoint_id is None:
        target = log.checkpoints[-1]
    else:
        found = [c for c in log.checkpoints if c.checkpoint_id == checkpoint_id]
        if not found:
            return ThreadLog([], [], False)
        target = found[0]
    group = target.snapshot_id
    return ThreadLog(
        checkpoints=[
            c for c in log.checkpoints if c.snapshot_id == group or c.snapshot is not None
        ],
        writes=[w for w in log.writes if w.snapshot_id == group],
        has_children=any(c.parent_id == target.checkpoint_id for c in log.checkpoints),
    )


@runtime_checkable
class Checkpointer(Protocol):
    """Durable storage for graph threads. Every method has an ``a``-prefixed async twin.

    Implementations must make :meth:`put` atomic (all records or none) and keep
    records of one ``tenant_id`` invisible to others.
    """

    tenant_id: str

    def put(self, checkpoints: Sequence[CheckpointRecord], writes: Sequence[WriteRecord]) -> None:
        """Append checkpoints and events in one transaction; a repeated
        (checkpoint, task, kind) event replaces the earlier one."""

    def load(self, thread_id: str, ns: str = "", checkpoint_id: str | None = None) -> ThreadLog:
        """What rebuilds one checkpoint (the newest when None): see :func:`slice_log`.
        Reads O(snapshot interval + number of snapshots) records, not the whole history."""

    def load_all(self, thread_id: str, ns: str = "") -> ThreadLog:
        """All checkpoints (ordered by id) and events of one thread namespace."""

    def list_namespaces(self, thread_id: str) -> list[str]:
        """Checkpoint namespaces stored for a thread ("" is the root graph)."""

    def delete_thread(self, thread_id: str) -> None:
        """Remove every record of the thread, subgraph namespaces included."""

    async def aput(
        self, checkpoints: Sequence[CheckpointRecord], writes: Sequence[WriteRecord]
    ) -> None: ...

    async def aload(
        self, thread_id: str, ns: str = "", checkpoint_id: str | None = None
    ) -> ThreadLog: ...

    async def aload_all(self, thread_id: str, ns: str = "") -> ThreadLog: ...

    async def alist_namespaces(self, thread_id: str) -> list[str]: ...

    async def adelete_thread(self, thread_id: str) -> None: ...

    def close(self) -> None:
        """Release connections and threads."""
