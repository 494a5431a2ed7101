"""Threads and runs of agents: the service behind ``/v1/threads`` and ``/v1/runs`` and the CLI.

A run is queued as a durable workflow (:mod:`roost.agents.durable`); a worker thread
runs the agent's graph while node I/O (model, tools, database) hops back to the event
loop that owns those clients. Outcomes land in ``agent_runs``; events go to
:class:`RunEvents` subscribers; a webhook, when asked for, is signed and retried.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

from dbos import DBOSClient, EnqueueOptions

from roost.agents import durable
from roost.agents.events import TERMINAL, RunEvents
from roost.agents.graphs import GRAPH_PREFIX, RunGraphs
from roost.agents.outcomes import record_outcome
from roost.agents.react import run_input
from roost.agents.registry import AgentRegistry
from roost.agents.runtime import AgentRuntime, RunContext
from roost.agents.store import FINISHED, RunRecord, RunStore, ThreadRecord
from roost.agents.webhooks import WebhookSender
from roost.errors import Conflict, InvalidRequest, NotFound
from roost.graph import Command, CompiledGraph
from roost.observe.logging import get_logger
from roost.observe.tracing import get_tracer
from roost.storage import new_id

T = TypeVar("T")
log = get_logger("roost.agents")
_tracer = get_tracer("roost.agents")
SETTLED = FINISHED | {"interrupted"}
_BRIDGE_TIMEOUT_S = 600.0


class AgentRunService:
    """Create threads, start/cancel/resume runs, read their state and events."""

    def __init__(
        self,
        store: RunStore,
        registry: AgentRegistry,
        runtime: AgentRuntime,
        *,
        checkpoints_path: Path,
        runs_url: str,
        concurrency: int = 4,
        webhooks: WebhookSender | None = None,
        events: RunEvents | None = None,
    ) -> None:
        self.store = store
        self.registry = registry
        self.runtime = runtime
        self.events = events or RunEvents()
        self.webhooks = webhooks
        self.checkpoints_path = checkpoints_path
        self.runs_url = runs_url
        self.concurrency = concurrency
        self.host_key = hashlib.sha256(str(checkpoints_path).encode()).hexdigest()[:12]
        self._run_graphs = RunGraphs(
            registry, runtime, checkpoints_path=checkpoints_path, host_key=self.host_key
        )
        self.graphs: dict[str, CompiledGraph] = self._run_graphs.plain
        """Plain graphs runnable by name (``{"graph": name}``); each has its own checkpointer."""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: DBOSClient | None = None
        self._launched = False
        self._launch_lock = asyncio.Lock()
        self._background: set[asyncio.Task[Any]] = set()

    # -- lifecycle ------------------------------------------------------------------------
    async def start(self) -> None:
        """Bind to this loop (the one that owns the clients). The run worker launches now
        only when unfinished runs wait for recovery, else with the first run: most server
        processes (and tests) never run an agent and need not pay for it."""
        self._loop = asyncio.get_running_loop()
        self.runtime.home_loop = self._loop
        self.runtime.events = self.events
        self._launch_lock = asyncio.Lock()
        if await self.store.has_unfinished_runs():
            await self._launch()

    async def _launch(self) -> DBOSClient:
        async with self._launch_lock:
            if self._client is None:
                url = await asyncio.to_thread(
                    durable.acquire, self.host_key, self, self.runs_url, self.concurrency
                )
                self._launched = True
                self._client = await asyncio.to_thread(DBOSClient, system_database_url=url)
            return self._client

    async def close(self) -> None:
        for task in list(self._background):
            task.cancel()
        if self._client is not None:
            await asyncio.to_thread(self._client.destroy)
            self._client = None
        if self._launched:
            await asyncio.to_thread(durable.release, self.host_key)
            self._launched = False
        self._run_graphs.close()

    # -- threads --------------------------------------------------------------------------
    async def create_thread(
        self, tenant_id: str, metadata: dict[str, Any] | None = None
    ) -> ThreadRecord:
        return await self.store.create_thread(tenant_id, metadata)

    async def thread_state(self, tenant_id: str, thread_id: str) -> dict[str, Any]:
        """The thread record plus its newest state (messages, last output, pending interrupts)."""
        thread = await self.store.get_thread(tenant_id, thread_id)
        body = thread.to_dict()
        graph = await self._thread_graph(tenant_id, thread_id)
        if graph is None:
            body.update(values={"messages": []}, interrupts=[], checkpoint_id=None)
            return body
        snapshot = await graph.aget_state(thread_id)
        body.update(
            values=_public_values(snapshot.values),
            interrupts=[{"id": i.id, "value": i.value} for i in snapshot.interrupts],
            checkpoint_id=snapshot.checkpoint_id,
            next=list(snapshot.next),
        )
        return body

    async def thread_history(
        self, tenant_id: str, thread_id: str, limit: int = 50
    ) -> list[dict[str, Any]]:
        """The thread's checkpoints, newest first."""
        await self.store.get_thread(tenant_id, thread_id)
        graph = await self._thread_graph(tenant_id, thread_id)
        if graph is None:
            return []
        return [
            {
                "checkpoint_id": s.checkpoint_id,
                "parent_checkpoint_id": s.parent_checkpoint_id,
                "created_at": s.created_at,
                "step": s.step,
                "next": list(s.next),
                "values": _public_values(s.values),
                "metadata": s.metadata,
            }
            for s in await graph.aget_state_history(thread_id, limit=limit)
        ]

    # -- runs -----------------------------------------------------------------------------
    async def start_run(
        self,
        tenant_id: str,
        thread_id: str,
        agent: str,
        message: str | dict[str, Any],
        *,
        version: int | str | None = None,
        variables: dict[str, Any] | None = None,
        webhook: str | None = None,
    ) -> RunRecord:
        """Queue a run of ``agent`` on the thread; returns it with status ``queued``."""
        await self.store.get_thread(tenant_id, thread_id)
        found = await self.registry.get(tenant_id, agent, version)
        found.spec.render_instructions(variables)  # refuse missing variables now, not later
        run_id = new_id("run")
        record = await self.store.create_run(
            RunRecord(
                run_id, tenant_id, thread_id, found.name, found.version, "queued",
                message, webhook=webhook,
            )
        )  # fmt: skip
        context = RunContext(tenant_id, thread_id, run_id, found.name, found.version)
        graph_name = self._run_graphs.name(tenant_id, found.name, found.version)
        await self._run_graphs.get(graph_name)
        recursion = 4 * found.spec.max_iterations + 4 * found.spec.max_reflections + 20
        await self._enqueue(record, graph_name, run_input(context, message, variables), recursion)
        return await self.store.get_run(tenant_id, run_id)

    async def start_graph_run(
        self,
        tenant_id: str,
        thread_id: str,
        graph: str,
        graph_input: dict[str, Any],
        *,
        webhook: str | None = None,
        recursion_limit: int = 100,
    ) -> RunRecord:
        """Queue a run of a registered graph on the thread (input: the graph's state keys)."""
        await self.store.get_thread(tenant_id, thread_id)
        if graph not in self.graphs:
            raise NotFound(f"no graph named {graph!r}", param="graph")
        if not isinstance(graph_input, dict):
            raise InvalidRequest("a graph run's input is an object of state keys", param="input")
        record = await self.store.create_run(
            RunRecord(new_id("run"), tenant_id, thread_id, f"{GRAPH_PREFIX}{graph}", 0,
                      "queued", graph_input, webhook=webhook)
        )  # fmt: skip
        graph_name = self._run_graphs.name(tenant_id, record.agent, 0)
        await self._run_graphs.get(graph_name)
        await self._enqueue(record, graph_name, graph_input, recursion_limit)
        return await self.store.get_run(tenant_id, record.id)

    async def get_run(self, tenant_id: str, run_id: str) -> RunRecord:
        return await self.store.get_run(tenant_id, run_id)

    async def wait(self, tenant_id: str, run_id: str, timeout_s: float = 300.0) -> RunRecord:
        """Return once the run is settled (finished or interrupted)."""
        async with asyncio.timeout(timeout_s):
            while True:
                events = self.events.subscribe(run_id, replay=False)
                try:
                    record = await self.store.get_run(tenant_id, run_id)
                    if record.status in SETTLED:
                        return record
                    # Events wake us early; the timeout re-reads the row in case the run
                    # ended in another process (whose events never reach this one).
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(1.0):
                            async for event in events:
                                if event["event"] == TERMINAL:
                                    break
                finally:
                    await events.aclose()

    async def stream(self, tenant_id: str, run_id: str) -> AsyncIterator[dict[str, Any]]:
        """The run's events from its start until it settles."""
        record = await self.store.get_run(tenant_id, run_id)
        if record.status in SETTLED:
            async for event in self.events.subscribe(run_id):
                yield event
                if event["event"] == TERMINAL:
                    return
            yield {"run_id": run_id, "event": TERMINAL, "run": record.to_dict()}
            return
        async for event in self.events.subscribe(run_id):
            yield event

    async def cancel(self, tenant_id: str, run_id: str) -> RunRecord:
        record = await self.store.get_run(tenant_id, run_id)
        if record.status in FINISHED:
            raise Conflict(f"run {run_id!r} already {record.status}")
        self.runtime.cancelled.add(run_id)
        await self.store.update_run(
            run_id, status="cancelled", only_if=("queued", "running", "interrupted")
        )
        if record.workflow_id and self._client is not None:
            await asyncio.to_thread(self._client.cancel_workflow, record.workflow_id)
        final = await self.store.get_run(tenant_id, run_id)
        self._settled(final)
        return final

    async def resume(
        self, tenant_id: str, run_id: str, answers: dict[str, Any] | None = None
    ) -> RunRecord:
        """Continue an interrupted run. Without ``answers`` every pending interrupt is
        answered ``"resume"`` (approvals carry their decision in the approvals store)."""
        record = await self.store.get_run(tenant_id, run_id)
        if record.status != "interrupted":
            raise Conflict(f"run {run_id!r} is {record.status}, not interrupted")
        pending = {i["id"] for i in record.interrupts}
        resume = answers if answers is not None else {i: "resume" for i in pending}
        unknown = set(resume) - pending
        if unknown:
            raise InvalidRequest(f"no pending interrupts {sorted(unknown)}", param="answers")
        if not await self.store.update_run(run_id, status="queued", only_if=("interrupted",)):
            raise Conflict(f"run {run_id!r} is being resumed already")
        self.events.reset(run_id)
        graph_name = self._run_graphs.name(tenant_id, record.agent, record.agent_version)
        await self._run_graphs.get(graph_name)
        recursion = 100
        if not record.agent.startswith(GRAPH_PREFIX):
            spec = (await self.registry.get(tenant_id, record.agent, record.agent_version)).spec
            recursion = 4 * spec.max_iterations + 4 * spec.max_reflections + 20
        await self._enqueue(record, graph_name, Command(resume=resume), recursion)
        return await self.store.get_run(tenant_id, run_id)

    async def resume_if_decided(
        self, tenant_id: str, run_id: str, is_pending: Callable[[str], Awaitable[bool]]
    ) -> RunRecord | None:
        """Resume an interrupted run once none of its approvals is pending any more (the
        approvals endpoint calls this after each decision); None when nothing was resumed."""
        try:
            record = await self.store.get_run(tenant_id, run_id)
        except NotFound:
            return None  # an approval asked by something other than an agent run
        if record.status != "interrupted":
            return None
        values: list[dict[str, Any]] = [
            item["value"] for item in record.interrupts if isinstance(item.get("value"), dict)
        ]
        if (
            not values
            or len(values) != len(record.interrupts)
            or any(v.get("type") != "approval" for v in values)
        ):
            return None  # some interrupt is not an approval: a human resumes it explicitly
        asked = [a["approval_id"] for v in values for a in v.get("approvals", [])]
        for approval_id in asked:
            if await is_pending(approval_id):
                return None
        try:
            return await self.resume(tenant_id, run_id)
        except Conflict:
            return None  # another decision resumed it first

    async def _enqueue(
        self, record: RunRecord, graph_name: str, graph_input: Any, limit: int
    ) -> None:
        client = await self._launch()
        workflow_id = f"{record.id}:{new_id('wf')}"
        await self.store.update_run(record.id, status="queued", workflow_id=workflow_id)
        options: EnqueueOptions = {
            "workflow_name": durable.WORKFLOW_NAME,
            "queue_name": durable.QUEUE_NAME,
            "workflow_id": workflow_id,
            "queue_partition_key": record.thread_id,
        }
        await asyncio.to_thread(
            client.enqueue, options, self.host_key, record.id, graph_name,
            record.thread_id, graph_input, limit,
        )  # fmt: skip

    # -- RunHost: called from worker threads ------------------------------------------------
    def ensure_graph(self, graph_name: str) -> None:
        if not self._run_graphs.has(graph_name):
            self._bridge(self._run_graphs.get(graph_name))

    def on_start(self, run_id: str) -> None:
        self._bridge(self.store.update_run(run_id, status="running", only_if=("queued",)))
        self.events.publish(run_id, {"event": "run_start"})

    def on_finish(self, run_id: str, result: dict[str, Any]) -> None:
        self._bridge(self._record_outcome(run_id, result))

    async def _record_outcome(self, run_id: str, result: dict[str, Any]) -> None:
        values: dict[str, Any] = result.get("values") or {}
        changes: dict[str, Any] = {"usage": values.get("usage") or {}}
        if result["status"] == "interrupted":
            status = "interrupted"
            changes["interrupts"] = result["interrupts"]
            for item in result["interrupts"]:
                self.events.publish(run_id, {"event": "interrupt", "interrupt": item})
        elif result["status"] == "error":
            status, changes["error"] = "failed", result["error"]
        elif (await self.store.find_run(run_id)).agent.startswith(GRAPH_PREFIX):
            # A plain graph has no status of its own: finishing is success, its state the output.
            status = "succeeded"
            changes.update(output=_jsonable(values), interrupts=[])
        else:
            status = "succeeded" if values.get("status") == "succeeded" else "failed"
            changes.update(output=values.get("output"), error=values.get("error"), interrupts=[])
        await self.store.update_run(run_id, status=status, only_if=("queued", "running"), **changes)
        self.runtime.cancelled.discard(run_id)
        record = await self.store.find_run(run_id)
        await record_outcome(self.runtime, record, values)
        self._settled(record)

    def _settled(self, record: RunRecord) -> None:
        self.events.publish(record.id, {"event": TERMINAL, "run": record.to_dict()})
        if record.webhook and self.webhooks is not None and record.status in SETTLED:
            payload = {"type": f"run.{record.status}", "run": record.to_dict()}
            task = asyncio.ensure_future(self.webhooks.deliver(record.webhook, payload))
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    def _bridge(self, work: Coroutine[Any, Any, T]) -> T:
        assert self._loop is not None
        future = asyncio.run_coroutine_threadsafe(work, self._loop)
        return future.result(_BRIDGE_TIMEOUT_S)

    async def _thread_graph(self, tenant_id: str, thread_id: str) -> CompiledGraph | None:
        runs = await self.store.list_runs(tenant_id, thread_id, limit=1)
        if not runs:
            return None
        latest = runs[0]
        return await self._run_graphs.get(
            self._run_graphs.name(tenant_id, latest.agent, latest.agent_version)
        )


def _jsonable(value: Any) -> Any:
    """Graph state as JSON (messages may be objects): what cannot be encoded becomes text."""
    return json.loads(json.dumps(value, default=str))


def _public_values(values: dict[str, Any]) -> dict[str, Any]:
    if "run" not in values:  # a plain graph's state: all of it
        return dict(_jsonable(values))
    keys = ("messages", "output", "status", "error", "usage", "iteration")
    return {k: values.get(k) for k in keys if k in values}
