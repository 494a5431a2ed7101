"""Run one task: call its node (with retries and timeout) and turn the result into writes.

Routing is decided here, right after the node returns, against the state as the
node sees it plus its own update; the decisions become writes so the event log
alone says what runs next.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from opentelemetry.trace import Status, StatusCode

from roost.graph.channels import Channel, LastValue
from roost.graph.context import CURRENT_TASK, GraphInterrupt, TaskContext
from roost.graph.errors import InvalidGraph, InvalidUpdate, NodeTimeout
from roost.graph.plan import BARRIER, GOTO, SEND, PlannedTask, Write
from roost.graph.retry import Clock
from roost.graph.spec import Branch, NodeSpec
from roost.graph.types import END, START, Command, Interrupt, Send
from roost.observe.tracing import get_tracer

if TYPE_CHECKING:
    from roost.graph.compiled import CompiledGraph

_tracer = get_tracer("roost.graph")


@dataclass(slots=True)
class TaskResult:
    task: PlannedTask
    writes: list[Write] = field(default_factory=list)
    update: dict[str, Any] | None = None
    error: BaseException | None = None
    interrupts: tuple[Interrupt, ...] = ()
    reused: bool = False
    """True when the writes come from the log (the task had finished before a crash or pause)."""

    @property
    def ok(self) -> bool:
        return self.error is None and not self.interrupts


@dataclass(slots=True)
class TaskEnv:
    """What a task needs from its run: the state it reads and where its events go."""

    graph: CompiledGraph
    channels: Mapping[str, Channel]
    values: dict[str, Any]
    resume: Mapping[str, Any]
    emit: Callable[[str, Any], None]
    clock: Clock
    subgraph_scope: Callable[[PlannedTask], Any]


def _context(env: TaskEnv, task: PlannedTask) -> TaskContext:
    return TaskContext(
        task_id=task.id,
        node=task.node,
        interrupt_prefix=task.interrupt_prefix,
        resume=env.resume,
        emit=env.emit,
        subgraph=env.subgraph_scope(task),
    )


def _node_input(env: TaskEnv, task: PlannedTask) -> Any:
    return task.arg if task.is_send else dict(env.values)


def _timeout_error(spec: NodeSpec) -> NodeTimeout:
    return NodeTimeout(f"node {spec.name!r} took longer than its {spec.timeout}s timeout")


def run_task(env: TaskEnv, task: PlannedTask, pool: concurrent.futures.Executor) -> TaskResult:
    """Run a task to completion on this thread (the sync runner)."""
    spec = env.graph.nodes[task.node]
    attempt = 1
    while True:
        ctx = _context(env, task)
        token = CURRENT_TASK.set(ctx)
        try:
            arg = _node_input(env, task)
            if spec.is_subgraph:
                output = spec.fn.run_as_subgraph(arg, ctx)
            elif spec.timeout is not None:
                future = pool.submit(contextvars.copy_context().run, spec.fn, arg)
                try:
                    output = future.result(timeout=spec.timeout)
                except concurrent.futures.TimeoutError:
                    raise _timeout_error(spec) from None
            else:
                output = spec.fn(arg)
            return finish_task(env, task, output)
        except GraphInterrupt as pause:
            return TaskResult(task, interrupts=pause.interrupts)
        except Exception as exc:
            if spec.retry is None or not spec.retry.should_retry(exc, attempt):
                return TaskResult(task, error=exc)
            env.clock.sleep(spec.retry.delay(attempt, exc))
            attempt += 1
        finally:
            CURRENT_TASK.reset(token)


async def arun_task(env: TaskEnv, task: PlannedTask) -> TaskResult:
    """Run a task to completion on the event loop (sync nodes go to a thread), as one
    span: model and tool calls the node makes are its children in the run's trace."""
    with _tracer.start_as_current_span(f"node {task.node}") as span:
        span.set_attribute("roost.graph.node", task.node)
        result = await _arun_task(env, task)
        if result.error is not None:
            span.set_status(Status(StatusCode.ERROR, type(result.error).__name__))
        elif result.interrupts:
            span.set_attribute("roost.graph.interrupted", True)
        return result


async def _arun_task(env: TaskEnv, task: PlannedTask) -> TaskResult:
    spec = env.graph.nodes[task.node]
    attempt = 1
    while True:
        ctx = _context(env, task)
        token = CURRENT_TASK.set(ctx)
        try:
            arg = _node_input(env, task)
            if spec.is_subgraph:
                call = spec.fn.arun_as_subgraph(arg, ctx)
            elif spec.is_async:
                call = spec.fn(arg)
            else:
                call = asyncio.to_thread(spec.fn, arg)
            if spec.timeout is not None:
                try:
                    output = await asyncio.wait_for(call, spec.timeout)
                except TimeoutError:
                    raise _timeout_error(spec) from None
            else:
                output = await call
            return await afinish_task(env, task, output)
        except GraphInterrupt as pause:
            return TaskResult(task, interrupts=pause.interrupts)
        except Exception as exc:
            if spec.retry is None or not spec.retry.should_retry(exc, attempt):
                return TaskResult(task, error=exc)
            await env.clock.asleep(spec.retry.delay(attempt, exc))
            attempt += 1
        finally:
            CURRENT_TASK.reset(token)


def _split_output(node: str, output: Any) -> tuple[dict[str, Any] | None, list[str | Send]]:
    if output is None:
        return None, []
    if isinstance(output, Command):
        goto = output.goto
        gotos: list[str | Send] = [goto] if isinstance(goto, (str, Send)) else list(goto)
        return output.update, gotos
    if isinstance(output, dict):
        return output, []
    if isinstance(output, (list, tuple)) and all(isinstance(item, Send) for item in output):
        return None, list(output)
    raise InvalidUpdate(
        f"node {node!r} returned {type(output).__name__}; expected a dict of state updates, "
        "a Command, a list of Send, or None"
    )


@dataclass(frozen=True, slots=True)
class SubgraphOutput:
    """What a subgraph node hands its parent: the state writes its own nodes made."""

    writes: list[Write]


def _forwarded(env: TaskEnv, output: SubgraphOutput) -> list[Write]:
    # The parent folds the subgraph's raw updates through its own reducers, so a
    # counter or a message list is not added twice; single-value keys keep the last write.
    last_only = {key for key, ch in env.channels.items() if isinstance(ch, LastValue)}
    writes = [(key, value) for key, value in output.writes if key in env.channels]
    final = {key: i for i, (key, _) in enumerate(writes) if key in last_only}
    return [w for i, w in enumerate(writes) if w[0] not in last_only or final[w[0]] == i]


def _own_writes(env: TaskEnv, task: PlannedTask, output: Any) -> tuple[list[Write], dict | None]:
    writes: list[Write] = []
    if isinstance(output, SubgraphOutput):
        writes = _forwarded(env, output)  # already normalised by the subgraph's channels
        update: dict[str, Any] | None = dict(writes)
        gotos: list[str | Send] = []
    else:
        update, gotos = _split_output(task.node, output)
        for key, value in (update or {}).items():
            channel = env.channels.get(key)
            if channel is None:
                who = "the graph input" if task.node == START else f"node {task.node!r}"
                raise InvalidUpdate(
                    f"{who} wrote unknown state key {key!r}; the state has {sorted(env.channels)}"
                )
            writes.append((key, channel.normalize_write(value)))
    for goto in gotos:
        writes.append(_route_write(env, task.node, goto))
    for target in env.graph.edges_from.get(task.node, ()):
        writes.append((GOTO, target))
    for barrier in env.graph.barriers_from.get(task.node, ()):
        writes.append((BARRIER, (barrier.key, task.node)))
    return writes, update


def _route_write(env: TaskEnv, source: str, goto: Any) -> Write:
    if isinstance(goto, Send):
        if goto.node not in env.graph.nodes:
            raise InvalidGraph(f"{source!r} sent to unknown node {goto.node!r}")
        return (SEND, goto)
    if goto != END and goto not in env.graph.nodes:
        raise InvalidGraph(f"{source!r} routed to unknown node {goto!r}")
    return (GOTO, goto)


def _branch_writes(env: TaskEnv, branch: Branch, source: str, result: Any) -> list[Write]:
    items = result if isinstance(result, (list, tuple)) else [result]
    writes = []
    for item in items:
        if branch.path_map is not None and not isinstance(item, Send):
            if item not in branch.path_map:
                raise InvalidGraph(
                    f"conditional edge from {source!r} returned {item!r}, which is not in its "
                    f"path map {list(branch.path_map)}"
                )
            item = branch.path_map[item]
        writes.append(_route_write(env, source, item))
    return writes


def local_view(env: TaskEnv, writes: list[Write]) -> dict[str, Any]:
    """The state as the writing node sees it: shared state plus its own update."""
    by_key: dict[str, list[Any]] = {}
    for key, value in writes:
        if key in env.channels:
            by_key.setdefault(key, []).append(value)
    values = dict(env.values)
    for key, updates in by_key.items():
        channel = env.channels[key]
        scratch = channel.fresh()
        if channel.is_set():
            scratch.restore(channel.snapshot())
        scratch.update(updates)
        values[key] = scratch.get()
    return values


def finish_task(env: TaskEnv, task: PlannedTask, output: Any) -> TaskResult:
    writes, update = _own_writes(env, task, output)
    branches = env.graph.branches_from.get(task.node, ())
    if branches:
        view = local_view(env, writes)
        for branch in branches:
            if branch.is_async:
                raise InvalidGraph("async routing functions need ainvoke/astream")
            writes += _branch_writes(env, branch, task.node, branch.route(view))
    return TaskResult(task, writes=writes, update=update)


async def afinish_task(env: TaskEnv, task: PlannedTask, output: Any) -> TaskResult:
    writes, update = _own_writes(env, task, output)
    branches = env.graph.branches_from.get(task.node, ())
    if branches:
        view = local_view(env, writes)
        for branch in branches:
            result = branch.route(view)
            if asyncio.iscoroutine(result):
                result = await result
            writes += _branch_writes(env, branch, task.node, result)
    return TaskResult(task, writes=writes, update=update)


def update_writes(env: TaskEnv, node: str, update: dict[str, Any]) -> list[Write]:
    """Writes for state that enters from outside a task, as if ``node`` had returned it:
    the graph input (``node=START``) or ``update_state(values, as_node=node)``."""
    task = PlannedTask(id=node, node=node, pos=0, is_send=False, arg=None, interrupt_prefix="")
    writes, _ = _own_writes(env, task, update)
    branches = env.graph.branches_from.get(node, ())
    if branches:
        view = local_view(env, writes)
        for branch in branches:
            result = branch.route(view)
            if asyncio.iscoroutine(result):
                result.close()
                raise InvalidGraph(f"the routing function after {node!r} must be a plain function")
            writes += _branch_writes(env, branch, node, result)
    return writes
