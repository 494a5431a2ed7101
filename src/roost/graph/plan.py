"""Which tasks a superstep runs, and how a superstep's writes change the state.

Besides state keys, task writes carry routing decisions as reserved keys, so a
checkpoint's next tasks follow from its events alone and replay never re-runs
routing functions:

- ``GOTO``: a node to trigger next step (static edges, conditional edges, Command.goto)
- ``SEND``: a ``Send`` task for next step
- ``BARRIER``: ``(barrier_key, source)`` for fan-in edges that wait for several nodes
- ``DONE``: a node that counts as run (``update_state(as_node=...)``)
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from roost.graph.channels import Channel, EmptyChannel
from roost.graph.types import END, Send

GOTO = "__goto__"
SEND = "__send__"
BARRIER = "__barrier__"
DONE = "__done__"
RESERVED_KEYS = frozenset({GOTO, SEND, BARRIER, DONE})

Write = tuple[str, Any]


@dataclass(frozen=True, slots=True)
class Barrier:
    """A fan-in edge: ``target`` runs once every node in ``sources`` has finished."""

    key: str
    sources: frozenset[str]
    target: str


@dataclass(slots=True)
class Control:
    """Routing state carried between supersteps: what runs next, half-met barriers."""

    triggers: list[str] = field(default_factory=list)
    sends: list[Send] = field(default_factory=list)
    barriers: dict[str, list[str]] = field(default_factory=dict)

    def copy(self) -> Control:
        return Control(
            list(self.triggers),
            list(self.sends),
            {key: list(seen) for key, seen in self.barriers.items()},
        )

    def to_data(self) -> dict[str, Any]:
        return {"triggers": self.triggers, "sends": self.sends, "barriers": self.barriers}

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Control:
        return cls(list(data["triggers"]), list(data["sends"]), dict(data["barriers"]))


@dataclass(frozen=True, slots=True)
class PlannedTask:
    """One task of a superstep: a triggered node (reads the state) or a Send (reads ``arg``)."""

    id: str
    node: str
    pos: int
    is_send: bool
    arg: Any
    interrupt_prefix: str


def apply_writes(
    channels: Mapping[str, Channel],
    control: Control,
    writes_by_task: Sequence[Sequence[Write]],
    barriers: Mapping[str, Barrier],
) -> None:
    """Apply one batch of writes (a superstep, an input or an update) in task order."""
    by_key: dict[str, list[Any]] = {}
    for writes in writes_by_task:
        for key, value in writes:
            if key == GOTO:
                if value != END and value not in control.triggers:
                    control.triggers.append(value)
            elif key == SEND:
                control.sends.append(value)
            elif key == BARRIER:
                _meet_barrier(control, barriers[value[0]], value[1])
            elif key == DONE:
                if value in control.triggers:
                    control.triggers.remove(value)
            else:
                by_key.setdefault(key, []).append(value)
    for key, values in by_key.items():
        channels[key].update(values)


def _meet_barrier(control: Control, barrier: Barrier, source: str) -> None:
    seen = control.barriers.setdefault(barrier.key, [])
    if source not in seen:
        seen.append(source)
    if barrier.sources.issubset(seen):
        del control.barriers[barrier.key]
        if barrier.target != END and barrier.target not in control.triggers:
            control.triggers.append(barrier.target)


def plan_tasks(
    control: Control,
    node_order: Mapping[str, int],
    *,
    checkpoint_id: str,
    ns: str,
    step: int,
) -> list[PlannedTask]:
    """The tasks of the superstep that starts at a checkpoint, in a deterministic order.

    Task ids depend on the checkpoint (so a fork gets fresh ones); interrupt ids do not
    (so answering an interrupt shown at a checkpoint works on a fork of it too).
    """
    names = sorted(set(control.triggers), key=node_order.__getitem__)
    targets: list[tuple[str, bool, Any]] = [(name, False, None) for name in names]
    targets += [(send.node, True, send.arg) for send in control.sends]
    tasks = []
    for pos, (node, is_send, arg) in enumerate(targets):
        digest = hashlib.blake2b(f"{checkpoint_id}|{pos}|{node}".encode(), digest_size=8)
        tasks.append(
            PlannedTask(
                id=digest.hexdigest(),
                node=node,
                pos=pos,
                is_send=is_send,
                arg=arg,
                interrupt_prefix=f"{ns}|{step}|{pos}|{node}",
            )
        )
    return tasks


def read_values(channels: Mapping[str, Channel]) -> dict[str, Any]:
    """The state as nodes see it: every key that has a value."""
    values = {}
    for key, channel in channels.items():
        try:
            values[key] = channel.get()
        except EmptyChannel:
            continue
    return values
