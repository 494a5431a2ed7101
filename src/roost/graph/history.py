"""Rebuild a thread's state at any checkpoint from its event log and snapshots.

State at checkpoint C = the nearest snapshot on C's path from the root, then every
batch of writes after it, folded through the channels. Delta-logged channels
(messages, append-only lists) are not in snapshots: they fold every batch from the
root, which costs one pass over the history and keeps storage linear.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from roost.graph import serde
from roost.graph.channels import Channel
from roost.graph.checkpoint.base import CheckpointRecord, ThreadLog, WriteRecord
from roost.graph.plan import Barrier, Control, Write, apply_writes
from roost.graph.types import Interrupt

SNAPSHOT_EVERY = 16
"""Checkpoints between snapshots: bounds replay work for constant-size channels."""


@dataclass(slots=True)
class ThreadState:
    """A checkpoint's rebuilt state plus what happened at it since (pending events)."""

    record: CheckpointRecord | None
    channels: dict[str, Channel]
    control: Control
    finished: dict[str, list[Write]] = field(default_factory=dict)
    """Writes of tasks planned at this checkpoint that already finished."""
    errors: dict[str, str] = field(default_factory=dict)
    interrupts: dict[str, tuple[Interrupt, ...]] = field(default_factory=dict)
    resume: dict[str, Any] = field(default_factory=dict)
    has_children: bool = False
    since_snapshot: int = 0


def make_snapshot(channels: Mapping[str, Channel], control: Control) -> bytes:
    saved = {
        key: channel.snapshot()
        for key, channel in channels.items()
        if not channel.is_delta_logged and channel.is_set()
    }
    return serde.dumps({"channels": saved, "control": control.to_data()})


def decode_writes(record: WriteRecord) -> list[Write]:
    return [(key, value) for key, value in serde.loads(record.payload)]


def _batch_for(
    record: CheckpointRecord, events: Mapping[str, list[WriteRecord]]
) -> list[list[Write]]:
    """The writes that turned ``record``'s parent state into ``record``'s state."""
    if record.source == "loop":
        at_parent = events.get(record.parent_id or "", [])
        finished = sorted((e for e in at_parent if e.kind == "writes"), key=lambda e: e.idx)
        return [decode_writes(e) for e in finished]
    if record.source in ("input", "update"):
        own = [e for e in events.get(record.checkpoint_id, []) if e.kind == record.source]
        return [decode_writes(e) for e in own]
    return []


def rebuild(
    log: ThreadLog,
    checkpoint_id: str | None,
    prototypes: Mapping[str, Channel],
    barriers: Mapping[str, Barrier],
) -> ThreadState:
    """The state at ``checkpoint_id`` (the newest checkpoint when None)."""
    channels = {key: proto.fresh() for key, proto in prototypes.items()}
    if not log.checkpoints:
        if checkpoint_id is not None:
            raise KeyError(checkpoint_id)
        return ThreadState(record=None, channels=channels, control=Control())
    by_id = {record.checkpoint_id: record for record in log.checkpoints}
    target = by_id[checkpoint_id] if checkpoint_id is not None else log.checkpoints[-1]
    path = _path_to(target, by_id)
    events: dict[str, list[WriteRecord]] = {}
    for event in log.writes:
        events.setdefault(event.checkpoint_id, []).append(event)

    snap_at = max((i for i, rec in enumerate(path) if rec.snapshot is not None), default=-1)
    delta_keys = {key for key, ch in channels.items() if ch.is_delta_logged}
    control = Control()
    first = 0 if delta_keys or snap_at < 0 else snap_at
    for i in range(first, len(path)):
        record = path[i]
        batch = _batch_for(record, events)
        if i < snap_at:
            batch = [[w for w in writes if w[0] in delta_keys] for writes in batch]
            _apply_channels_only(channels, batch)
            continue
        if i == snap_at:
            _apply_channels_only(channels, [[w for w in ws if w[0] in delta_keys] for ws in batch])
            control = _restore_snapshot(channels, record.snapshot or b"")
            continue
        if record.source == "loop":
            control.triggers, control.sends = [], []
        elif record.source == "input":
            control = Control()
        apply_writes(channels, control, batch, barriers)

    state = ThreadState(
        record=target,
        channels=channels,
        control=control,
        has_children=any(rec.parent_id == target.checkpoint_id for rec in log.checkpoints),
        since_snapshot=len(path) - 1 - snap_at if snap_at >= 0 else len(path),
    )
    _collect_pending(state, events.get(target.checkpoint_id, []))
    return state


def _path_to(
    target: CheckpointRecord, by_id: Mapping[str, CheckpointRecord]
) -> list[CheckpointRecord]:
    path = [target]
    while path[-1].parent_id is not None and path[-1].parent_id in by_id:
        path.append(by_id[path[-1].parent_id])
    path.reverse()
    return path


def _apply_channels_only(channels: Mapping[str, Channel], batch: Sequence[Sequence[Write]]) -> None:
    by_key: dict[str, list[Any]] = {}
    for writes in batch:
        for key, value in writes:
            by_key.setdefault(key, []).append(value)
    for key, values in by_key.items():
        channels[key].update(values)


def _restore_snapshot(channels: Mapping[str, Channel], snapshot: bytes) -> Control:
    data = serde.loads(snapshot)
    for key, value in data["channels"].items():
        if key in channels:
            channels[key].restore(value)
    return Control.from_data(data["control"])


def _collect_pending(state: ThreadState, events: Sequence[WriteRecord]) -> None:
    for event in sorted(events, key=lambda e: e.created_at):
        if event.kind == "writes":
            state.finished[event.task_id] = decode_writes(event)
        elif event.kind == "error":
            state.errors[event.task_id] = str(serde.loads(event.payload))
        elif event.kind == "interrupt":
            found = serde.loads(event.payload)
            state.interrupts[event.task_id] = tuple(found)
        elif event.kind == "resume":
            state.resume.update(serde.loads(event.payload))


def writes_since_input(log: ThreadLog, checkpoint_id: str) -> list[Write]:
    """State writes made on the path to ``checkpoint_id`` since its run's input.

    A subgraph resumed after an interrupt forwards these to its parent along with
    the writes of the rest of its run.
    """
    by_id = {record.checkpoint_id: record for record in log.checkpoints}
    events: dict[str, list[WriteRecord]] = {}
    for event in log.writes:
        events.setdefault(event.checkpoint_id, []).append(event)
    path = _path_to(by_id[checkpoint_id], by_id)
    starts = [i for i, record in enumerate(path) if record.source == "input"]
    writes: list[Write] = []
    for record in path[(starts[-1] + 1 if starts else 0) :]:
        for batch in _batch_for(record, events):
            writes.extend(w for w in batch if not w[0].startswith("__"))
    return writes
