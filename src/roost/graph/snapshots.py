"""Turn a rebuilt checkpoint into the ``StateSnapshot`` that ``get_state`` returns."""

from __future__ import annotations

from typing import TYPE_CHECKING

from roost.graph.checkpoint.base import ThreadLog
from roost.graph.history import ThreadState, rebuild
from roost.graph.plan import plan_tasks, read_values
from roost.graph.types import StateSnapshot, TaskInfo

if TYPE_CHECKING:
    from roost.graph.compiled import CompiledGraph


def build_snapshot(
    graph: CompiledGraph, state: ThreadState, ns: str, sub_logs: dict[str, ThreadLog] | None
) -> StateSnapshot:
    """The public view of a rebuilt checkpoint; ``sub_logs`` adds subgraph snapshots."""
    record = state.record
    if record is None:
        return StateSnapshot({}, (), (), (), None, None, None, -1)
    planned = plan_tasks(
        state.control,
        graph.node_order,
        checkpoint_id=record.checkpoint_id,
        ns=ns,
        step=record.step + 1,
    )
    tasks = []
    # A checkpoint with children is history: show what ran from it, not what is pending.
    is_head = not state.has_children
    for task in planned:
        if is_head and task.id in state.finished:
            continue
        sub_state = None
        spec = graph.nodes[task.node]
        sub_ns = f"{ns}|{task.node}:{task.id}" if ns else f"{task.node}:{task.id}"
        if sub_logs is not None and spec.is_subgraph and sub_ns in sub_logs:
            sub = spec.fn
            sub_state = build_snapshot(
                sub, rebuild(sub_logs[sub_ns], None, sub.channels, sub.barriers), sub_ns, sub_logs
            )
        found = tuple(i for i in state.interrupts.get(task.id, ()) if i.id not in state.resume)
        error = state.errors.get(task.id)
        if not is_head:
            found, error = (), None
        tasks.append(TaskInfo(task.id, task.node, error, found, sub_state))
    return StateSnapshot(
        values=read_values(state.channels),
        next=tuple(task.name for task in tasks),
        tasks=tuple(tasks),
        interrupts=tuple(i for task in tasks for i in task.interrupts),
        checkpoint_id=record.checkpoint_id,
        parent_checkpoint_id=record.parent_id,
        created_at=record.created_at,
        step=record.step,
        metadata={"source": record.source, "step": record.step, **record.metadata},
    )
