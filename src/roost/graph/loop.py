"""One run of a compiled graph on one thread namespace, independent of sync or async.

The drivers in :mod:`roost.graph.runner` do the I/O (load the log, run tasks,
persist records); this class decides what to run and what to record.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from roost.errors import InvalidRequest
from roost.graph import serde
from roost.graph.checkpoint.base import (
    Checkpointer,
    CheckpointRecord,
    CheckpointSource,
    ThreadLog,
    WriteKind,
    WriteRecord,
    new_checkpoint_id,
)
from roost.graph.errors import GraphRecursionError
from roost.graph.history import (
    SNAPSHOT_EVERY,
    ThreadState,
    make_snapshot,
    rebuild,
    writes_since_input,
)
from roost.graph.plan import (
    DONE,
    Control,
    PlannedTask,
    Write,
    apply_writes,
    plan_tasks,
    read_values,
)
from roost.graph.tasks import TaskEnv, TaskResult, update_writes
from roost.graph.types import START, Command, Interrupt

if TYPE_CHECKING:
    from roost.graph.compiled import CompiledGraph

Persist = tuple[list[CheckpointRecord], list[WriteRecord]]


@dataclass(frozen=True, slots=True)
class SubgraphScope:
    """What a subgraph run inherits from the task that runs it."""

    checkpointer: Checkpointer | None
    thread_id: str | None
    ns: str
    resume: dict[str, Any]
    emit: Callable[[str, Any], None]
    recursion_limit: int


class RunLoop:
    """Plans supersteps, applies their writes and produces the records to persist."""

    def __init__(
        self,
        graph: CompiledGraph,
        *,
        checkpointer: Checkpointer | None,
        thread_id: str | None,
        ns: str = "",
        recursion_limit: int,
        emit: Callable[[str, Any], None],
        parent_resume: dict[str, Any] | None = None,
    ) -> None:
        self.graph = graph
        self.thread_id = thread_id
        self.ns = ns
        self.recursion_limit = recursion_limit
        self.emit = emit
        self.parent_resume = parent_resume or {}
        self.checkpointer = checkpointer
        self.is_durable = checkpointer is not None and thread_id is not None
        self.state: ThreadState = ThreadState(None, graph.new_channels(), Control())
        self.num_steps = 0
        self.interrupts: list[Interrupt] = []
        self.run_writes: list[Write] = []
        """State writes applied during this run, which a subgraph forwards to its parent."""

    # -- starting -----------------------------------------------------------------
    def load_log(self, checkpoint_id: str | None, *, full: bool = False) -> ThreadLog:
        """The records the run starts from: a slice, or the whole namespace with ``full``."""
        if self.checkpointer is None or self.thread_id is None:
            return ThreadLog(checkpoints=[], writes=[])
        if full:
            return self.checkpointer.load_all(self.thread_id, self.ns)
        return self.checkpointer.load(self.thread_id, self.ns, checkpoint_id)

    async def aload_log(self, checkpoint_id: str | None, *, full: bool = False) -> ThreadLog:
        if self.checkpointer is None or self.thread_id is None:
            return ThreadLog(checkpoints=[], writes=[])
        if full:
            return await self.checkpointer.aload_all(self.thread_id, self.ns)
        return await self.checkpointer.aload(self.thread_id, self.ns, checkpoint_id)

    def start(self, log: ThreadLog, run_input: Any, checkpoint_id: str | None) -> list[Persist]:
        """Rebuild the thread and apply the caller's input; returns records to persist."""
        try:
            self.state = rebuild(log, checkpoint_id, self.graph.channels, self.graph.barriers)
        except KeyError:
            raise InvalidRequest(
                f"thread {self.thread_id!r} has no checkpoint {checkpoint_id!r}"
            ) from None
        self.state.resume.update(self.parent_resume)
        if isinstance(run_input, Command):
            ops = self._start_resume(run_input)
        elif run_input is not None:
            ops = [self._start_input(run_input)]
        elif self.state.record is None:
            raise InvalidRequest(
                f"thread {self.thread_id!r} has nothing to continue; pass an input to start it"
            )
        elif checkpoint_id is not None and self.state.has_children:
            ops = [self._fork()]
        else:
            if self.ns:  # a subgraph continuing after a pause: its earlier writes go up too
                self.run_writes = writes_since_input(log, self.state.record.checkpoint_id)
            # Inputs, resumes and forks are logged already; a plain continue gets its own mark.
            ops = [self._run_started("continue")]
        return ops

    def _run_started(self, how: str) -> Persist:
        """The log's record that a call began running the thread (one per call, not per step)."""
        if not self.is_durable or self.state.record is None:
            return [], []
        data = {"how": how, "recursion_limit": self.recursion_limit}
        return [], [self._event(self.state.record, new_checkpoint_id(), "run", 0, "", data)]

    def _start_input(self, run_input: Any) -> Persist:
        if not isinstance(run_input, dict):
            raise InvalidRequest(
                f"graph input must be a dict of state keys, not {type(run_input).__name__}"
            )
        writes = update_writes(self._env(), START, run_input)
        self.state.control = Control()
        apply_writes(self.state.channels, self.state.control, [writes], self.graph.barriers)
        return self._new_checkpoint("input", [("__input__", START, writes)])

    def _start_resume(self, command: Command) -> list[Persist]:
        if command.update is not None or command.goto:
            raise InvalidRequest(
                "Command input takes only resume=; use update_state to change state"
            )
        if self.state.record is None:
            raise InvalidRequest(f"thread {self.thread_id!r} has no interrupted run to resume")
        pending = [i for found in self.state.interrupts.values() for i in found]
        unanswered = [i for i in pending if i.id not in self.state.resume]
        answers = command.resume
        if not isinstance(answers, dict) or not set(answers) <= {i.id for i in pending}:
            if len(unanswered) != 1:
                raise InvalidRequest(
                    f"thread {self.thread_id!r} has {len(unanswered)} unanswered interrupts "
                    f"{[i.id for i in unanswered]}; resume with {{interrupt_id: value}}"
                )
            answers = {unanswered[0].id: answers}
        self.state.resume.update(answers)
        event = self._event(self.state.record, new_checkpoint_id(), "resume", 0, "", answers)
        return [([], [event])]

    def _fork(self) -> Persist:
        return self._new_checkpoint("fork", [])

    def update(self, values: dict[str, Any] | None, as_node: str | None) -> Persist:
        """A manual state change: a new checkpoint whose writes come as if from ``as_node``."""
        if self.state.record is None:
            raise InvalidRequest(f"thread {self.thread_id!r} has no state to update")
        writes: list[Write] = []
        if as_node is not None:
            if as_node not in self.graph.nodes:
                raise InvalidRequest(f"update_state: unknown node {as_node!r}")
            writes = [(DONE, as_node), *update_writes(self._env(), as_node, values or {})]
        else:
            env = self._env()
            writes = [
                (k, env.channels[k].normalize_write(v)) for k, v in _known(env, values).items()
            ]
        apply_writes(self.state.channels, self.state.control, [writes], self.graph.barriers)
        return self._new_checkpoint("update", [("__update__", as_node or "", writes)])

    # -- supersteps -----------------------------------------------------------------
    def next_tasks(self) -> list[PlannedTask]:
        record = self.state.record
        if record is None:
            return []
        tasks = plan_tasks(
            self.state.control,
            self.graph.node_order,
            checkpoint_id=record.checkpoint_id,
            ns=self.ns,
            step=record.step + 1,
        )
        if tasks and self.num_steps >= self.recursion_limit:
            raise GraphRecursionError(
                f"recursion_limit of {self.recursion_limit} supersteps reached before the graph "
                f"finished (thread {self.thread_id!r}); pass a higher recursion_limit= if the "
                "graph is meant to run longer, or check its conditional edges for a loop"
            )
        return tasks

    def reused_result(self, task: PlannedTask) -> TaskResult | None:
        """The logged result of a task that finished before a pause, failure or crash."""
        writes = self.state.finished.get(task.id)
        return None if writes is None else TaskResult(task, writes=writes, reused=True)

    def make_env(self, subgraph_scope: Callable[[PlannedTask], Any]) -> TaskEnv:
        return self._env(subgraph_scope)

    def _env(self, subgraph_scope: Callable[[PlannedTask], Any] | None = None) -> TaskEnv:
        return TaskEnv(
            graph=self.graph,
            channels=self.state.channels,
            values=read_values(self.state.channels),
            resume=self.state.resume,
            emit=self.emit,
            clock=self.graph.clock,
            subgraph_scope=subgraph_scope or (lambda _task: None),
        )

    def subgraph_scope(self, task: PlannedTask) -> SubgraphScope:
        prefix = f"{self.ns}|" if self.ns else ""
        return SubgraphScope(
            checkpointer=self.checkpointer,
            thread_id=self.thread_id if self.is_durable else None,
            ns=f"{prefix}{task.node}:{task.id}",
            resume=dict(self.state.resume),
            emit=self.emit,
            recursion_limit=self.recursion_limit,
        )

    def finished_task_records(self, result: TaskResult) -> list[WriteRecord]:
        """Events to log as soon as a parallel task finishes, so a crash keeps its writes."""
        record = self.state.record
        if not self.is_durable or record is None or result.reused:
            return []
        task = result.task
        if result.error is not None:
            return [self._event(record, task.id, "error", task.pos, task.node, repr(result.error))]
        if result.interrupts:
            return [
                self._event(
                    record,
                    task.id,
                    "interrupt",
                    task.pos,
                    task.node,
                    list(result.interrupts),
                )
            ]
        return [self._event(record, task.id, "writes", task.pos, task.node, result.writes)]

    def commit(self, results: list[TaskResult], logged: set[str]) -> Persist:
        """Apply a successful superstep and make its checkpoint (plus unlogged task events)."""
        ordered = sorted(results, key=lambda r: r.task.pos)
        events = (
            []
            if not self.is_durable
            else [
                event
                for r in ordered
                if r.task.id not in logged
                for event in self.finished_task_records(r)
            ]
        )
        self.state.control.triggers, self.state.control.sends = [], []
        batch = [r.writes for r in ordered]
        apply_writes(self.state.channels, self.state.control, batch, self.graph.barriers)
        self._remember(batch)
        self.num_steps += 1
        checkpoints, own_events = self._new_checkpoint("loop", [])
        return checkpoints, events + own_events

    def pause(self, results: list[TaskResult], logged: set[str]) -> Persist:
        """Log what a superstep that stopped early (interrupt or error) did finish."""
        self.interrupts = [i for r in results for i in r.interrupts]
        self.state.interrupts.update({r.task.id: r.interrupts for r in results if r.interrupts})
        events = [
            event
            for r in sorted(results, key=lambda r: r.task.pos)
            if r.task.id not in logged
            for event in self.finished_task_records(r)
        ]
        return [], events

    def _remember(self, batch: list[list[Write]]) -> None:
        for writes in batch:
            self.run_writes.extend(w for w in writes if w[0] in self.state.channels)

    # -- records ------------------------------------------------------------------------
    def _new_checkpoint(
        self, source: CheckpointSource, own: list[tuple[str, str, list[Write]]]
    ) -> Persist:
        parent = self.state.record
        step = -1 if parent is None else parent.step + (0 if source == "fork" else 1)
        checkpoint_id = new_checkpoint_id()
        since = self.state.since_snapshot + 1
        snapshot, base_id = None, None
        snapshot_id = parent.snapshot_id if parent is not None else checkpoint_id
        if since >= SNAPSHOT_EVERY or parent is None:
            snapshot = make_snapshot(self.state.channels, self.state.control)
            base_id = None if parent is None else parent.snapshot_id
            snapshot_id, since = checkpoint_id, 0
        record = CheckpointRecord(
            thread_id=self.thread_id or "",
            ns=self.ns,
            checkpoint_id=checkpoint_id,
            parent_id=None if parent is None else parent.checkpoint_id,
            step=step,
            source=source,
            created_at=time.time(),
            snapshot_id=snapshot_id,
            snapshot=snapshot,
            base_id=base_id,
        )
        kind: WriteKind = "update" if source == "update" else "input"
        events = [
            self._event(record, task_id, kind, i, node, writes)
            for i, (task_id, node, writes) in enumerate(own)
        ]
        self.state = ThreadState(
            record=record,
            channels=self.state.channels,
            control=self.state.control,
            resume=dict(self.parent_resume),
            since_snapshot=since,
        )
        if not self.is_durable:
            return [], []
        return [record], events

    def _event(
        self, at: CheckpointRecord, task_id: str, kind: WriteKind, idx: int, node: str, data: Any
    ) -> WriteRecord:
        return WriteRecord(
            thread_id=self.thread_id or "",
            ns=self.ns,
            checkpoint_id=at.checkpoint_id,
            snapshot_id=at.snapshot_id,
            task_id=task_id,
            kind=kind,
            idx=idx,
            node=node,
            payload=serde.dumps(data),
            created_at=time.time(),
        )

    def values(self) -> dict[str, Any]:
        return read_values(self.state.channels)

    def output(self) -> dict[str, Any]:
        values = self.values()
        if self.interrupts:
            values["__interrupt__"] = list(self.interrupts)
        return values


def _known(env: TaskEnv, values: dict[str, Any] | None) -> dict[str, Any]:
    unknown = set(values or {}) - set(env.channels)
    if unknown:
        raise InvalidRequest(f"update_state: unknown state keys {sorted(unknown)}")
    return dict(values or {})
