"""``CompiledGraph``: the runtime a ``StateGraph`` compiles to."""

from __future__ import annotations

import asyncio
import collections
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import Any

from roost.errors import InvalidRequest
from roost.graph.channels import Channel
from roost.graph.checkpoint.base import Checkpointer, ThreadLog
from roost.graph.context import GraphInterrupt, TaskContext
from roost.graph.history import ThreadState, rebuild
from roost.graph.loop import RunLoop, SubgraphScope
from roost.graph.plan import Barrier
from roost.graph.retry import Clock
from roost.graph.runner import adrive, adrive_stream, drive, iterate_queue
from roost.graph.snapshots import build_snapshot
from roost.graph.spec import Branch, GraphSpec, NodeSpec
from roost.graph.tasks import SubgraphOutput
from roost.graph.types import Durability, StateSnapshot, StreamMode

DEFAULT_RECURSION_LIMIT = 25
ALL_MODES = ("values", "updates", "events", "messages", "custom")


class CompiledGraph:
    """Runs a graph: ``invoke``/``stream`` (and async twins), state inspection and time travel.

    With a checkpointer every call names a ``thread_id``; the thread's history is kept
    and a call continues from its newest checkpoint (or ``checkpoint_id``).
    """

    _is_roost_graph = True

    def __init__(
        self,
        *,
        spec: GraphSpec,
        checkpointer: Checkpointer | None,
        durability: Durability,
        name: str,
        clock: Clock,
    ) -> None:
        self.spec = spec
        self.checkpointer = checkpointer
        self.durability: Durability = durability
        self.name = name
        self.clock = clock
        self.nodes: dict[str, NodeSpec] = dict(spec.nodes)
        self.channels: dict[str, Channel] = dict(spec.channels)
        self.node_order = {name: i for i, name in enumerate(self.nodes)}
        self.edges_from: dict[str, list[str]] = collections.defaultdict(list)
        for source, target in spec.edges:
            self.edges_from[source].append(target)
        self.barriers: dict[str, Barrier] = {b.key: b for b in spec.barriers}
        self.barriers_from: dict[str, list[Barrier]] = collections.defaultdict(list)
        for barrier in spec.barriers:
            for source in barrier.sources:
                self.barriers_from[source].append(barrier)
        self.branches_from: dict[str, list[Branch]] = collections.defaultdict(list)
        for branch in spec.branches:
            self.branches_from[branch.source].append(branch)

    # -- helpers ------------------------------------------------------------------------
    def new_channels(self) -> dict[str, Channel]:
        return {key: proto.fresh() for key, proto in self.channels.items()}

    @property
    def is_all_sync(self) -> bool:
        """True when no node or routing function is async (then ``invoke`` needs no event loop)."""
        for spec in self.nodes.values():
            if spec.is_async or (spec.is_subgraph and not spec.fn.is_all_sync):
                return False
        return not any(branch.is_async for branch in self.spec.branches)

    def _loop(
        self, thread_id: str | None, recursion_limit: int, emit: Callable[[str, Any], None]
    ) -> RunLoop:
        if self.checkpointer is not None and thread_id is None:
            raise InvalidRequest(
                "this graph has a checkpointer: pass thread_id= to name the thread"
            )
        if recursion_limit < 1:
            raise InvalidRequest("recursion_limit must be at least 1")
        return RunLoop(
            self,
            checkpointer=self.checkpointer,
            thread_id=thread_id,
            recursion_limit=recursion_limit,
            emit=emit,
        )

    # -- running ------------------------------------------------------------------------
    def invoke(
        self,
        input: Any,
        *,
        thread_id: str | None = None,
        checkpoint_id: str | None = None,
        recursion_limit: int = DEFAULT_RECURSION_LIMIT,
        durability: Durability | None = None,
    ) -> dict[str, Any]:
        """Run until the graph ends or pauses; returns the final state.

        ``input`` is a dict of state keys (starts a run), ``Command(resume=...)`` (answers
        interrupts) or None (continues the thread, or forks it at ``checkpoint_id``).
        A paused run's result has the pending interrupts under ``"__interrupt__"``.
        """
        if not self.is_all_sync:
            return _run_coroutine(
                self.ainvoke(
                    input,
                    thread_id=thread_id,
                    checkpoint_id=checkpoint_id,
                    recursion_limit=recursion_limit,
                    durability=durability,
                )
            )
        loop = self._loop(thread_id, recursion_limit, _ignore)
        for _ in drive(loop, input, checkpoint_id, durability or self.durability):
            pass
        return loop.output()

    async def ainvoke(
        self,
        input: Any,
        *,
        thread_id: str | None = None,
        checkpoint_id: str | None = None,
        recursion_limit: int = DEFAULT_RECURSION_LIMIT,
        durability: Durability | None = None,
    ) -> dict[str, Any]:
        """Async twin of :meth:`invoke`; sync nodes run in threads."""
        loop = self._loop(thread_id, recursion_limit, _ignore)
        await adrive(loop, input, checkpoint_id, durability or self.durability)
        return loop.output()

    def stream(
        self,
        input: Any,
        *,
        thread_id: str | None = None,
        checkpoint_id: str | None = None,
        stream_mode: StreamMode | Sequence[StreamMode] = "values",
        recursion_limit: int = DEFAULT_RECURSION_LIMIT,
        durability: Durability | None = None,
    ) -> Iterator[Any]:
        """Run like :meth:`invoke`, yielding events as they happen.

        Modes: ``values`` (full state after each step), ``updates`` ({node: update} per
        task), ``events`` (task start/end and checkpoints), ``messages`` ((message,
        metadata) for messages added and chunks sent with ``stream_message``),
        ``custom`` (data from ``get_stream_writer()``). With a list of modes each item
        is a ``(mode, payload)`` pair.
        """
        modes, single = _modes(stream_mode)
        if not self.is_all_sync:
            yield from _iterate_async(
                self.astream(
                    input,
                    thread_id=thread_id,
                    checkpoint_id=checkpoint_id,
                    stream_mode=stream_mode,
                    recursion_limit=recursion_limit,
                    durability=durability,
                )
            )
            return
        events: collections.deque[tuple[str, Any]] = collections.deque()

        def emit(mode: str, payload: Any) -> None:
            if mode in modes:
                events.append((mode, payload))

        loop = self._loop(thread_id, recursion_limit, emit)
        for _ in drive(loop, input, checkpoint_id, durability or self.durability):
            while events:
                mode, payload = events.popleft()
                yield payload if single else (mode, payload)
        while events:
            mode, payload = events.popleft()
            yield payload if single else (mode, payload)

    async def astream(
        self,
        input: Any,
        *,
        thread_id: str | None = None,
        checkpoint_id: str | None = None,
        stream_mode: StreamMode | Sequence[StreamMode] = "values",
        recursion_limit: int = DEFAULT_RECURSION_LIMIT,
        durability: Durability | None = None,
    ) -> AsyncIterator[Any]:
        """Async twin of :meth:`stream`; events from nodes arrive while they run."""
        modes, single = _modes(stream_mode)
        queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        event_loop = asyncio.get_running_loop()

        def emit(mode: str, payload: Any) -> None:
            if mode in modes:
                event_loop.call_soon_threadsafe(queue.put_nowait, (mode, payload))

        loop = self._loop(thread_id, recursion_limit, emit)
        producer = asyncio.create_task(
            adrive_stream(loop, input, checkpoint_id, durability or self.durability, queue)
        )
        async for mode, payload in iterate_queue(queue, producer):
            yield payload if single else (mode, payload)

    def prepare(self, input: Any, *, thread_id: str) -> None:
        """Record an input (or ``Command(resume=...)``) on the thread without running it.

        ``invoke(None, thread_id=...)`` then runs it. Durable-run workers use the pair so
        a crash between the two never applies the same input twice.
        """
        cp = self._require_checkpointer()
        loop = self._loop(thread_id, DEFAULT_RECURSION_LIMIT, _ignore)
        for checkpoints, writes in loop.start(loop.load_log(None), input, None):
            cp.put(checkpoints, writes)

    async def aprepare(self, input: Any, *, thread_id: str) -> None:
        """Async twin of :meth:`prepare`, for runs executing on an event loop."""
        cp = self._require_checkpointer()
        loop = self._loop(thread_id, DEFAULT_RECURSION_LIMIT, _ignore)
        for checkpoints, writes in loop.start(await loop.aload_log(None), input, None):
            await cp.aput(checkpoints, writes)

    # -- subgraphs ----------------------------------------------------------------------
    def _sub_loop(self, ctx: TaskContext) -> RunLoop:
        scope: SubgraphScope | None = ctx.subgraph
        if scope is None:  # pragma: no cover - the runner always passes a scope
            raise RuntimeError("subgraph called outside a parent run")

        def emit(mode: str, payload: Any) -> None:
            if mode in ("custom", "messages"):
                scope.emit(mode, payload)

        return RunLoop(
            self,
            checkpointer=scope.checkpointer,
            thread_id=scope.thread_id,
            ns=scope.ns,
            recursion_limit=scope.recursion_limit,
            emit=emit,
            parent_resume=scope.resume,
        )

    @staticmethod
    def _sub_input(log: ThreadLog, arg: Any) -> Any:
        # A namespace with checkpoints means this task ran before and paused: continue it.
        return None if log.checkpoints else arg

    def run_as_subgraph(self, arg: Any, ctx: TaskContext) -> SubgraphOutput:
        """Run as a node of a parent graph, in the namespace of the parent's task."""
        loop = self._sub_loop(ctx)
        log = loop.load_log(None, full=True)  # a subgraph thread is short-lived
        for _ in drive(loop, self._sub_input(log, arg), None, "sync", log):
            pass
        if loop.interrupts:
            raise GraphInterrupt(tuple(loop.interrupts))
        return SubgraphOutput(loop.run_writes)

    async def arun_as_subgraph(self, arg: Any, ctx: TaskContext) -> SubgraphOutput:
        loop = self._sub_loop(ctx)
        log = await loop.aload_log(None, full=True)
        await adrive(loop, self._sub_input(log, arg), None, "sync", log)
        if loop.interrupts:
            raise GraphInterrupt(tuple(loop.interrupts))
        return SubgraphOutput(loop.run_writes)

    # -- state and time travel ----------------------------------------------------------
    def _require_checkpointer(self) -> Checkpointer:
        if self.checkpointer is None:
            raise InvalidRequest(
                "this graph was compiled without a checkpointer; it keeps no state"
            )
        return self.checkpointer

    def _snapshot(
        self, state: ThreadState, ns: str, sub_logs: dict[str, ThreadLog] | None
    ) -> StateSnapshot:
        return build_snapshot(self, state, ns, sub_logs)

    def _state_from_log(
        self, log: ThreadLog, checkpoint_id: str | None, thread_id: str
    ) -> ThreadState:
        try:
            return rebuild(log, checkpoint_id, self.channels, self.barriers)
        except KeyError:
            raise InvalidRequest(
                f"thread {thread_id!r} has no checkpoint {checkpoint_id!r}"
            ) from None

    def get_state(
        self, thread_id: str, checkpoint_id: str | None = None, *, subgraphs: bool = False
    ) -> StateSnapshot:
        """The thread's state at its newest checkpoint, or at ``checkpoint_id``."""
        cp = self._require_checkpointer()
        log = cp.load(thread_id, "", checkpoint_id)
        sub_logs = None
        if subgraphs:
            sub_logs = {ns: cp.load(thread_id, ns) for ns in cp.list_namespaces(thread_id) if ns}
        return self._snapshot(self._state_from_log(log, checkpoint_id, thread_id), "", sub_logs)

    async def aget_state(
        self, thread_id: str, checkpoint_id: str | None = None, *, subgraphs: bool = False
    ) -> StateSnapshot:
        cp = self._require_checkpointer()
        log = await cp.aload(thread_id, "", checkpoint_id)
        sub_logs = None
        if subgraphs:
            sub_logs = {
                ns: await cp.aload(thread_id, ns)
                for ns in await cp.alist_namespaces(thread_id)
                if ns
            }
        return self._snapshot(self._state_from_log(log, checkpoint_id, thread_id), "", sub_logs)

    def _history(self, log: ThreadLog, limit: int | None) -> list[StateSnapshot]:
        records = list(reversed(log.checkpoints))[:limit]
        return [
            self._snapshot(rebuild(log, r.checkpoint_id, self.channels, self.barriers), "", None)
            for r in records
        ]

    def get_state_history(self, thread_id: str, *, limit: int | None = None) -> list[StateSnapshot]:
        """Every checkpoint of the thread (all branches), newest first."""
        return self._history(self._require_checkpointer().load_all(thread_id), limit)

    async def aget_state_history(
        self, thread_id: str, *, limit: int | None = None
    ) -> list[StateSnapshot]:
        return self._history(await self._require_checkpointer().aload_all(thread_id), limit)

    def update_state(
        self,
        thread_id: str,
        values: dict[str, Any] | None,
        *,
        as_node: str | None = None,
        checkpoint_id: str | None = None,
    ) -> str:
        """Change the thread's state as if ``as_node`` had returned ``values``; returns the
        new checkpoint's id. From an old ``checkpoint_id`` this starts a new branch."""
        cp = self._require_checkpointer()
        loop = self._loop(thread_id, DEFAULT_RECURSION_LIMIT, _ignore)
        loop.state = self._state_from_log(
            cp.load(thread_id, "", checkpoint_id), checkpoint_id, thread_id
        )
        checkpoints, writes = loop.update(values, as_node)
        cp.put(checkpoints, writes)
        return checkpoints[0].checkpoint_id

    async def aupdate_state(
        self,
        thread_id: str,
        values: dict[str, Any] | None,
        *,
        as_node: str | None = None,
        checkpoint_id: str | None = None,
    ) -> str:
        cp = self._require_checkpointer()
        loop = self._loop(thread_id, DEFAULT_RECURSION_LIMIT, _ignore)
        loop.state = self._state_from_log(
            await cp.aload(thread_id, "", checkpoint_id), checkpoint_id, thread_id
        )
        checkpoints, writes = loop.update(values, as_node)
        await cp.aput(checkpoints, writes)
        return checkpoints[0].checkpoint_id


def _ignore(mode: str, payload: Any) -> None:
    """Discard stream events (invoke)."""


def _modes(stream_mode: StreamMode | Sequence[StreamMode]) -> tuple[set[str], bool]:
    single = isinstance(stream_mode, str)
    modes: set[str] = {stream_mode} if isinstance(stream_mode, str) else set(stream_mode)
    unknown = modes - set(ALL_MODES)
    if unknown:
        raise InvalidRequest(
            f"unknown stream_mode {sorted(unknown)}; choose from {list(ALL_MODES)}"
        )
    return modes, single


def _run_coroutine(coro: Any) -> Any:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    coro.close()
    raise InvalidRequest(
        "this graph has async nodes and an event loop is running: use await ainvoke()"
    )


def _iterate_async(agen: AsyncIterator[Any]) -> Iterator[Any]:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        raise InvalidRequest(
            "this graph has async nodes and an event loop is running: use astream()"
        )
    with asyncio.Runner() as runner:
        try:
            while True:
                try:
                    yield runner.run(agen.__anext__())  # type: ignore[arg-type]
                except StopAsyncIteration:
                    return
        finally:
            runner.run(agen.aclose())  # type: ignore[attr-defined]
