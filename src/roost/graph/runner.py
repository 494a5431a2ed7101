"""The sync and async drivers: run a :class:`RunLoop` superstep by superstep.

Tasks of one superstep run concurrently (threads for the sync driver, asyncio
tasks for the async one). Each finished task of a parallel step is logged at
once, so when a sibling fails or the process dies its work is kept; a
single-task step is logged together with its checkpoint in one transaction.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import contextvars
from collections.abc import AsyncIterator, Iterator
from typing import Any

from roost.graph.channels import MessagesChannel
from roost.graph.checkpoint.base import Checkpointer, CheckpointRecord, ThreadLog, WriteRecord
from roost.graph.errors import CheckpointWriteFailed
from roost.graph.loop import Persist, RunLoop
from roost.graph.plan import PlannedTask
from roost.graph.retry import Clock, RetryPolicy
from roost.graph.tasks import TaskResult, arun_task, run_task
from roost.graph.types import Command, Durability

_pools: dict[str, concurrent.futures.ThreadPoolExecutor] = {}


def _pool(name: str) -> concurrent.futures.ThreadPoolExecutor:
    if name not in _pools:
        _pools[name] = concurrent.futures.ThreadPoolExecutor(64, thread_name_prefix=name)
    return _pools[name]


def task_pool() -> concurrent.futures.ThreadPoolExecutor:
    """Threads for the tasks of parallel supersteps (sync driver)."""
    return _pool("roost-graph-task")


def timeout_pool() -> concurrent.futures.ThreadPoolExecutor:
    """Threads for sync nodes with a timeout; separate so a full task pool cannot
    starve the calls its own tasks wait on."""
    return _pool("roost-graph-timeout")


def _merge(ops: list[Persist]) -> Persist:
    checkpoints: list[CheckpointRecord] = []
    writes: list[WriteRecord] = []
    for more_checkpoints, more_writes in ops:
        checkpoints += more_checkpoints
        writes += more_writes
    return checkpoints, writes


def _write_failed(exc: BaseException) -> CheckpointWriteFailed:
    return CheckpointWriteFailed(
        f"could not persist the run's checkpoint after retries: {exc!r}; the run stops "
        "here rather than continue with state it cannot recover"
    )


class Persister:
    """Writes a run's records according to its durability mode (sync driver)."""

    def __init__(self, checkpointer: Checkpointer | None, durability: Durability, clock: Clock):
        self.checkpointer = checkpointer
        self.durability = durability
        self.clock = clock
        self.buffer: list[Persist] = []
        self.background: concurrent.futures.ThreadPoolExecutor | None = None
        self.pending: list[concurrent.futures.Future[None]] = []

    def submit(self, op: Persist) -> None:
        if self.checkpointer is None or not (op[0] or op[1]):
            return
        if self.durability == "exit":
            self.buffer.append(op)
        elif self.durability == "async":
            if self.background is None:  # one thread keeps the writes in order
                self.background = concurrent.futures.ThreadPoolExecutor(1)
            self.pending.append(self.background.submit(self._put, op))
        else:
            self._put(op)

    def flush(self) -> None:
        if self.buffer:
            op, self.buffer = _merge(self.buffer), []
            self._put(op)
        try:
            for future in self.pending:
                future.result()
        finally:
            self.pending = []
            if self.background is not None:
                self.background.shutdown(wait=True)
                self.background = None

    def _put(self, op: Persist) -> None:
        assert self.checkpointer is not None
        policy, attempt = RetryPolicy.checkpoint_write(), 1
        while True:
            try:
                self.checkpointer.put(*op)
                return
            except Exception as exc:
                if not policy.should_retry(exc, attempt) or isinstance(
                    exc, (TypeError, ValueError)
                ):
                    raise _write_failed(exc) from exc
                self.clock.sleep(policy.delay(attempt, exc))
                attempt += 1


class AsyncPersister:
    """Writes a run's records according to its durability mode (async driver)."""

    def __init__(self, checkpointer: Checkpointer | None, durability: Durability, clock: Clock):
        self.checkpointer = checkpointer
        self.durability = durability
        self.clock = clock
        self.buffer: list[Persist] = []
        self.last: asyncio.Task[None] | None = None

    async def submit(self, op: Persist) -> None:
        if self.checkpointer is None or not (op[0] or op[1]):
            return
        if self.durability == "exit":
            self.buffer.append(op)
        elif self.durability == "async":
            self.last = asyncio.create_task(self._after(self.last, op))
        else:
            await self._put(op)

    async def _after(self, previous: asyncio.Task[None] | None, op: Persist) -> None:
        if previous is not None:
            await previous
        await self._put(op)

    async def flush(self) -> None:
        if self.buffer:
            op, self.buffer = _merge(self.buffer), []
            await self._put(op)
        if self.last is not None:
            last, self.last = self.last, None
            await last

    async def _put(self, op: Persist) -> None:
        assert self.checkpointer is not None
        policy, attempt = RetryPolicy.checkpoint_write(), 1
        while True:
            try:
                await self.checkpointer.aput(*op)
                return
            except Exception as exc:
                if not policy.should_retry(exc, attempt) or isinstance(
                    exc, (TypeError, ValueError)
                ):
                    raise _write_failed(exc) from exc
                await self.clock.asleep(policy.delay(attempt, exc))
                attempt += 1


def _report(loop: RunLoop, result: TaskResult) -> None:
    """Stream events for one finished task."""
    node = result.task.node
    if result.interrupts:
        loop.emit("updates", {"__interrupt__": result.interrupts})
    elif result.error is None and not result.reused:
        loop.emit("updates", {node: result.update})
        for key, value in (result.update or {}).items():
            if isinstance(loop.state.channels.get(key), MessagesChannel):
                for message in value if isinstance(value, list) else [value]:
                    loop.emit("messages", (message, {"node": node}))
    status = "error" if result.error else "interrupt" if result.interrupts else "done"
    loop.emit(
        "events", {"event": "task_end", "node": node, "task_id": result.task.id, "status": status}
    )


def _checkpoint_event(loop: RunLoop) -> None:
    record = loop.state.record
    if record is not None:
        loop.emit(
            "events",
            {
                "event": "checkpoint",
                "checkpoint_id": record.checkpoint_id,
                "step": record.step,
                "source": record.source,
            },
        )
    loop.emit("values", loop.values())


def _partition(
    loop: RunLoop, tasks: list[PlannedTask]
) -> tuple[list[TaskResult], list[PlannedTask]]:
    """Results of tasks that finished before (from the log), and the tasks to run now."""
    results: list[TaskResult] = []
    to_run = []
    for task in tasks:
        reused = loop.reused_result(task)
        if reused is None:
            to_run.append(task)
            loop.emit("events", {"event": "task_start", "node": task.node, "task_id": task.id})
        else:
            results.append(reused)
    return results, to_run


def _end_of_step(
    loop: RunLoop, results: list[TaskResult], logged: set[str]
) -> tuple[Persist, bool, BaseException | None]:
    """What to persist after a superstep, whether the run stops there, and the error to raise."""
    if all(r.ok for r in results):
        return loop.commit(results, logged), False, None
    failed = next((r.error for r in results if r.error is not None), None)
    return loop.pause(results, logged), True, failed


def drive(
    loop: RunLoop,
    run_input: Any,
    checkpoint_id: str | None,
    durability: Durability,
    preloaded: ThreadLog | None = None,
) -> Iterator[None]:
    """Run ``loop`` to the end on this thread, yielding whenever events may be waiting."""
    persister = Persister(loop.checkpointer, durability, loop.graph.clock)
    try:
        log = preloaded if preloaded is not None else loop.load_log(checkpoint_id)
        for op in loop.start(log, run_input, checkpoint_id):
            persister.submit(op)
        if run_input is not None and not isinstance(run_input, Command):
            _checkpoint_event(loop)
        yield
        while tasks := loop.next_tasks():
            env = loop.make_env(loop.subgraph_scope)
            results, to_run = _partition(loop, tasks)
            logged: set[str] = set()
            if len(to_run) == 1 and len(tasks) == 1:
                results.append(run_task(env, to_run[0], timeout_pool()))
                _report(loop, results[-1])
            else:
                futures = [
                    task_pool().submit(
                        contextvars.copy_context().run, run_task, env, task, timeout_pool()
                    )
                    for task in to_run
                ]
                for future in concurrent.futures.as_completed(futures):
                    result = future.result()
                    results.append(result)
                    persister.submit(([], loop.finished_task_records(result)))
                    logged.add(result.task.id)
                    _report(loop, result)
                    yield
            op, is_stop, failed = _end_of_step(loop, results, logged)
            persister.submit(op)
            if is_stop:
                persister.flush()
                if failed is not None:
                    raise failed
                return
            _checkpoint_event(loop)
            yield
    finally:
        persister.flush()


async def adrive(
    loop: RunLoop,
    run_input: Any,
    checkpoint_id: str | None,
    durability: Durability,
    preloaded: ThreadLog | None = None,
) -> None:
    """Run ``loop`` to the end on the running event loop."""
    persister = AsyncPersister(loop.checkpointer, durability, loop.graph.clock)
    try:
        log = preloaded if preloaded is not None else await loop.aload_log(checkpoint_id)
        for op in loop.start(log, run_input, checkpoint_id):
            await persister.submit(op)
        if run_input is not None and not isinstance(run_input, Command):
            _checkpoint_event(loop)
        while tasks := loop.next_tasks():
            env = loop.make_env(loop.subgraph_scope)
            results, to_run = _partition(loop, tasks)
            logged: set[str] = set()
            if len(to_run) == 1 and len(tasks) == 1:
                results.append(await arun_task(env, to_run[0]))
                _report(loop, results[-1])
            else:
                running = [asyncio.create_task(arun_task(env, task)) for task in to_run]
                try:
                    for next_done in asyncio.as_completed(running):
                        result = await next_done
                        results.append(result)
                        await persister.submit(([], loop.finished_task_records(result)))
                        logged.add(result.task.id)
                        _report(loop, result)
                finally:  # a cancelled run must not leave its tasks running
                    for still_running in running:
                        still_running.cancel()
            op, is_stop, failed = _end_of_step(loop, results, logged)
            await persister.submit(op)
            if is_stop:
                await persister.flush()
                if failed is not None:
                    raise failed
                return
            _checkpoint_event(loop)
    finally:
        await persister.flush()


async def adrive_stream(
    loop: RunLoop,
    run_input: Any,
    checkpoint_id: str | None,
    durability: Durability,
    queue: asyncio.Queue[Any],
) -> None:
    """Run :func:`adrive` and mark the end of the stream on ``queue``."""
    # Events are queued with call_soon; the end marker must go the same way to come last.
    schedule = asyncio.get_running_loop().call_soon
    try:
        await adrive(loop, run_input, checkpoint_id, durability)
    except BaseException as exc:
        schedule(queue.put_nowait, ("__error__", exc))
        raise
    finally:
        schedule(queue.put_nowait, ("__end__", None))


async def iterate_queue(
    queue: asyncio.Queue[Any], producer: asyncio.Task[None]
) -> AsyncIterator[tuple[str, Any]]:
    try:
        while True:
            mode, payload = await queue.get()
            if mode == "__end__":
                break
            if mode == "__error__":
                raise payload
            yield mode, payload
    finally:
        if not producer.done():
            producer.cancel()
        with contextlib.suppress(BaseException):  # its error already went through the queue
            await producer
