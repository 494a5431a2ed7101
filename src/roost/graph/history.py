"""Rebuild a thread's state at any checkpoint from its snapshots and event log.

State at checkpoint C = the nearest snapshot S on C's path, then every batch of
writes after S, folded through the channels. Snapshots hold the constant-size
channels in full; delta-logged channels (messages, append-only lists) are stored
in them as *segments*, the items appended since the previous snapshot, so the
value is the concatenation along the snapshot chain. Storage stays linear in the
history and a rebuild reads one snapshot chain plus at most a snapshot interval of
events.
"""

from __future__ import annotations

import collections
import copy
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from roost.graph import serde
from roost.graph.channels import Channel
from roost.graph.checkpoint.base import CheckpointRecord, ThreadLog, WriteRecord
from roost.graph.plan import Barrier, Control, Write, apply_writes
from roost.graph.types import Interrupt

SNAPSHOT_EVERY = 16
"""Checkpoints between snapshots: bounds the events a rebuild replays."""
SNAPSHOT_CACHE_SIZE = 4096
# Decoded snapshots by (thread, ns, checkpoint id). A stored snapshot never changes, so
# a process that rebuilds a thread again decodes only the snapshots written since.
_decoded: collections.OrderedDict[tuple[str, str, str], dict[str, Any]] = collections.OrderedDict()
_decoded_lock = threading.Lock()


def clear_snapshot_cache() -> None:
    """Forget decoded snapshots (benchmarks measuring a cold process use this)."""
    with _decoded_lock:
        _decoded.clear()


def _decode_snapshot(record: CheckpointRecord) -> dict[str, Any]:
    key = (record.thread_id, record.ns, record.checkpoint_id)
    with _decoded_lock:
        data = _decoded.get(key)
        if data is not None:
            _decoded.move_to_end(key)
            return data
    data = serde.loads_compressed(record.snapshot or b"")
    with _decoded_lock:
        _decoded[key] = data
        if len(_decoded) > SNAPSHOT_CACHE_SIZE:
            _decoded.popitem(last=False)
    return data


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
    """Serialise a snapshot and start new segments for the delta-logged channels."""
    saved, segments = {}, {}
    for key, channel in channels.items():
        if channel.is_delta_logged:
            is_full, items = channel.segment()
            segments[key] = [is_full, items]  # a list: a tuple would need tagging
            channel.mark()
        elif channel.is_set():
            saved[key] = channel.snapshot()
    data = {"channels": saved, "segments": segments, "control": control.to_data()}
    return serde.dumps_compressed(data)


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
    """The state at ``checkpoint_id`` (the newest checkpoint when None).

    ``log`` is a full log or the slice :meth:`Checkpointer.load` returns; raises
    KeyError when ``checkpoint_id`` is not in it.
    """
    channels = {key: proto.fresh() for key, proto in prototypes.items()}
    if not log.checkpoints:
        if checkpoint_id is not None:
            raise KeyError(checkpoint_id)
        return ThreadState(record=None, channels=channels, control=Control())
    by_id = {record.checkpoint_id: record for record in log.checkpoints}
    # Nothing is newer than the newest checkpoint, so in a slice too it sorts last.
    target = log.checkpoints[-1] if checkpoint_id is None else by_id[checkpoint_id]
    path = _path_from_snapshot(target, by_id)
    control = _restore_snapshot(channels, path[0], by_id)
    events: dict[str, list[WriteRecord]] = {}
    for event in log.writes:
        events.setdefault(event.checkpoint_id, []).append(event)
    for record in path[1:]:
        if record.source == "loop":
            control.triggers, control.sends = [], []
        elif record.source == "input":
            control = Control()
        apply_writes(channels, control, _batch_for(record, events), barriers)

    has_children = log.has_children
    if has_children is None:
        has_children = any(r.parent_id == target.checkpoint_id for r in log.checkpoints)
    state = ThreadState(
        record=target,
        channels=channels,
        control=control,
        has_children=has_children,
        since_snapshot=len(path) - 1,
    )
    _collect_pending(state, events.get(target.checkpoint_id, []))
    return state


def _path_from_snapshot(
    target: CheckpointRecord, by_id: Mapping[str, CheckpointRecord]
) -> list[CheckpointRecord]:
    """Checkpoints from the nearest snapshot (first) to ``target`` (last)."""
    path = [target]
    while path[-1].snapshot is None:
        parent_id = path[-1].parent_id
        if parent_id is None or parent_id not in by_id:
            raise ValueError(f"checkpoint {target.checkpoint_id} has no snapshot on its path")
        path.append(by_id[parent_id])
    path.reverse()
    return path


def _restore_snapshot(
    channels: Mapping[str, Channel],
    snapshot: CheckpointRecord,
    by_id: Mapping[str, CheckpointRecord],
) -> Control:
    chain = [snapshot]
    while chain[-1].base_id is not None and chain[-1].base_id in by_id:
        chain.append(by_id[chain[-1].base_id])
    data: dict[str, Any] = {}
    for record in reversed(chain):  # oldest segment first
        data = _decode_snapshot(record)
        for key, (is_full, items) in data["segments"].items():
            if key in channels:
                # shallow copies: callers may mutate state dicts, the cache must not change
                fresh = [dict(item) if type(item) is dict else item for item in items]
                if is_full:
                    channels[key].restore(fresh)
                else:
                    channels[key].extend_segment(fresh)
    for key, value in data["channels"].items():
        if key in channels:
            channels[key].restore(copy.deepcopy(value))
    for channel in channels.values():
        if channel.is_delta_logged:
            channel.mark()
    return Control.from_data(data["control"])


def _collect_pending(state: ThreadState, events: Sequence[WriteRecord]) -> None:
    for event in sorted(events, key=lambda e: e.created_at):
        if event.kind == "writes":
            state.finished[event.task_id] = decode_writes(event)
        elif event.kind == "error":
            state.errors[event.task_id] = str(serde.loads(event.payload))
        elif event.kind == "interrupt":
            state.interrupts[event.task_id] = tuple(serde.loads(event.payload))
        elif event.kind == "resume":
            state.resume.update(serde.loads(event.payload))


def writes_since_input(log: ThreadLog, checkpoint_id: str) -> list[Write]:
    """State writes made on the path to ``checkpoint_id`` since its run's input.

    A subgraph resumed after an interrupt forwards these to its parent along with
    the writes of the rest of its run. Needs the full log (``load_all``).
    """
    by_id = {record.checkpoint_id: record for record in log.checkpoints}
    events: dict[str, list[WriteRecord]] = {}
    for event in log.writes:
        events.setdefault(event.checkpoint_id, []).append(event)
    path = [by_id[checkpoint_id]]
    while path[-1].parent_id is not None and path[-1].parent_id in by_id:
        path.append(by_id[path[-1].parent_id])
    path.reverse()
    starts = [i for i, record in enumerate(path) if record.source == "input"]
    writes: list[Write] = []
    for record in path[(starts[-1] + 1 if starts else 0) :]:
        for batch in _batch_for(record, events):
            writes.extend(w for w in batch if not w[0].startswith("__"))
    return writes
