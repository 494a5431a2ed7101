"""Threads and runs of agents and graphs: the run service of the platform kernel, behind
``/v1/threads``, ``/v1/runs``, the CLI and ``roost worker``.

A run is one status row (``agent_runs``) plus a durable DBOS workflow
(:mod:`roost.runs.executor`). Any process may enqueue; the processes that execute runs
(the server by default, ``roost worker`` processes beside servers that only enqueue)
claim them from the shared queue and run the graph on their own event loop. Events go
to the ``run_events`` table and reach subscribers in every process; a cancel is the
durable status the executing process watches for, wherever it is.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from roost.agents.coordinator_runs import (
    COORDINATOR_AGENT,
    CoordinatorSetup,
    coordinator_input,
    roster,
)
from roost.agents.graphs import GRAPH_PREFIX, RunGraphs
from roost.agents.outcomes import record_outcome
from roost.agents.planner import MAX_SUBTASKS, Plan, validate_plan
from roost.agents.react import run_input
from roost.agents.registry import AgentRegistry
from roost.agents.run_setup import PromptResolver, VariantPicker, run_setup
from roost.agents.runtime import AgentRuntime, RunCancelled, RunContext
from roost.agents.store import FINISHED, RunRecord, RunStore, ThreadRecord
from roost.agents.webhooks import WebhookSender
from roost.errors import Conflict, InvalidRequest, NotFound, Overloaded, RequestTimeout
from roost.graph import Command, CompiledGraph
from roost.observe.logging import get_logger
from roost.observe.propagation import current_headers
from roost.runs import executor
from roost.runs.events import TERMINAL, RunEventLog
from roost.runs.workers import WorkerWatch
from roost.storage import new_id

log = get_logger("roost.agents")
SETTLED = FINISHED | {"interrupted"}


@dataclass(frozen=True, slots=True)
class ExecutionSettings:
    """Whether and how this process executes runs."""

    runs_url: str  # DBOS system database, shared by every process of the deployment
    concurrency: int = 4  # runs executed at once here; 0 = only enqueue
    eager: bool = False  # launch the executor at start (workers), not with the first run
    heartbeat_interval_s: float = 2.0
    takeover_after_s: float = 10.0
    cancel_poll_s: float = 0.5


class AgentRunService:
    """Create threads, start/cancel/resume runs, read their state and events."""

    def __init__(
        self,
        store: RunStore,
        registry: AgentRegistry,
        runtime: AgentRuntime,
        graphs: RunGraphs,
        events: RunEventLog,
        execution: ExecutionSettings,
        *,
        webhooks: WebhookSender | None = None,
    ) -> None:
        self.store = store
        self.registry = registry
        self.runtime = runtime
        self.events = events
        self.webhooks = webhooks
        self.execution = execution
        self.runs_url = execution.runs_url
        # Every process of a deployment shares the queue, so they share this key too.
        self.host_key = hashlib.sha256(execution.runs_url.encode()).hexdigest()[:12]
        self._run_graphs = graphs
        self.graph_factory = graphs
        self.graphs: dict[str, CompiledGraph] = graphs.plain
        """Plain graphs runnable by name (``{"graph": name}``); each has its own checkpointer."""
        self.executor_id: str | None = None
        self._client: Any = None
        self._launching: asyncio.Future[None] | None = None
        self._closed = False
        self._watch: WorkerWatch | None = None
        self._active: set[str] = set()
        self._tasks: dict[str, asyncio.Task[Any]] = {}
        self._workflows: dict[str, asyncio.Task[Any]] = {}  # run id -> its workflow's task
        self._cancel_task: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[Any]] = set()
        # Set by the kernel: managed prompts (``prompt:`` in specs) and online experiments.
        self.prompts: PromptResolver | None = None
        self.experiments: VariantPicker | None = None

    @property
    def executes(self) -> bool:
        return self.execution.concurrency > 0

    @property
    def launched(self) -> bool:
        return self.executor_id is not None

    # -- lifecycle ------------------------------------------------------------------------
    async def start(self) -> None:
        """Start events; launch the executor now when this process is a worker or when
        unfinished runs wait (else with the first run: most processes that execute runs
        in-process — and most tests — never run one and need not pay for DBOS)."""
        self.runtime.home_loop = asyncio.get_running_loop()
        self.runtime.events = self.events
        await self.events.start()
        if self.executes and (self.execution.eager or await self.store.has_unfinished_runs()):
            await self._ensure_executor()

    async def _ensure_executor(self) -> None:
        if self._closed:
            raise Overloaded("the server is shutting down; runs are not taken here")
        launching = self._launching
        if launching is None or (launching.done() and (
            launching.cancelled() or launching.exception() is not None
        )):  # fmt: skip
            launching = self._launching = asyncio.ensure_future(self._launch_executor())
        # Shielded: a caller that goes away (a client disconnecting, an evaluation being
        # cancelled) must not stop the launch half-way, or DBOS would run for this process
        # with nobody left to stop it; close() waits for the launch instead.
        await asyncio.shield(launching)

    async def _launch_executor(self) -> None:
        if self.executor_id is None:
            # On this loop's thread (blocking briefly): DBOS then runs runs on this loop.
            self.executor_id = await executor.launch(
                self.host_key,
                self,
                system_database_url=self.runs_url,
                concurrency=self.execution.concurrency,
                executor_id=executor.new_executor_id(),
            )
        if self._watch is None:
            self._watch = WorkerWatch(
                self.store.database,
                self.executor_id,
                self._recover,
                interval_s=self.execution.heartbeat_interval_s,
                takeover_after_s=self.execution.takeover_after_s,
            )
            await self._watch.start()
            self._cancel_task = asyncio.create_task(self._watch_cancels())

    async def _recover(self, executor_ids: list[str]) -> int:
        return await asyncio.to_thread(executor.recover, executor_ids)

    async def _queue_client(self) -> Any:
        if self._client is None:
            self._client = await asyncio.to_thread(executor.queue_client, self.runs_url)
        return self._client

    async def close(self) -> None:
        self._closed = True
        if self._launching is not None:
            await asyncio.wait([self._launching])  # whatever it ends in, it has ended
        for task in list(self._background):
            task.cancel()
        if self._cancel_task is not None:
            self._cancel_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._cancel_task
        if self._watch is not None:
            await self._watch.stop()
        if self._client is not None:
            await asyncio.to_thread(self._client.destroy)
            self._client = None
        # A run that has settled may still have its workflow recording its result: let it
        # (briefly), so that stopping DBOS does not interrupt it mid-write. Runs still
        # executing are left to the takeover.
        finishing = [t for r, t in self._workflows.items() if r not in self._active]
        if finishing:
            await asyncio.wait(finishing, timeout=5)
        if self.executor_id is not None:
            await executor.shutdown(self.host_key)
            self.executor_id = None
        await self.events.close()
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
        started_by: str | None = None,
        started_by_role: str | None = None,
    ) -> RunRecord:
        """Queue a run of ``agent`` on the thread; returns it with status ``queued``.

        ``started_by`` (the principal, as the audit log names it) makes approvals the run
        asks for count as that principal's requests."""
        await self.store.get_thread(tenant_id, thread_id)
        found = await self.registry.get(tenant_id, agent, version)
        setup, variant = await run_setup(
            found.spec, tenant_id, thread_id, variables,
            prompts=self.prompts, experiments=self.experiments,
        )  # fmt: skip
        if "prompt" not in setup:
            found.spec.render_instructions(variables)  # refuse missing variables now
        run_id = new_id("run")
        record = await self.store.create_run(
            RunRecord(
                run_id, tenant_id, thread_id, found.name, found.version, "queued",
                message, webhook=webhook,
            )
        )  # fmt: skip
        if variant is not None and self.experiments is not None:
            model = str(setup.get("model") or found.spec.model)
            await self.experiments.record(tenant_id, variant, run_id, thread_id, model)
        context = RunContext(
            tenant_id, thread_id, run_id, found.name, found.version, started_by, started_by_role
        )
        graph_name = self._run_graphs.name(tenant_id, found.name, found.version)
        await self._run_graphs.get(graph_name)
        recursion = 4 * found.spec.max_iterations + 4 * found.spec.max_reflections + 20
        graph_input = run_input(context, message, variables, setup)
        await self._enqueue(record, graph_name, graph_input, recursion)
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

    async def start_coordinator_run(
        self,
        tenant_id: str,
        thread_id: str,
        task: str,
        *,
        agents: Sequence[str] | None = None,
        model: str | None = None,
        plan: dict[str, Any] | None = None,
        max_revisions: int = 1,
        webhook: str | None = None,
    ) -> RunRecord:
        """Queue a coordinator run: a plan over ``agents`` (default: all the tenant's),
        each subtask run by its agent, the results synthesized by ``model`` (default: the
        first agent's model). Unknown agents and invalid given plans fail before queueing."""
        await self.store.get_thread(tenant_id, thread_id)
        members = await roster(self.registry, tenant_id, agents)
        if plan is not None:
            validate_plan(Plan.model_validate(plan), members)
        if model is None:
            model = (await self.registry.get(tenant_id, next(iter(members)))).spec.model
        run_id = new_id("run")
        setup = CoordinatorSetup(tenant_id, thread_id, run_id, model, members, max_revisions)
        given = {"task": task, "agents": list(members), "model": model, "plan": plan}
        record = await self.store.create_run(
            RunRecord(run_id, tenant_id, thread_id, COORDINATOR_AGENT, 0, "queued", given,
                      webhook=webhook)
        )  # fmt: skip
        graph_name = self._run_graphs.name(tenant_id, COORDINATOR_AGENT, 0)
        await self._run_graphs.get(graph_name)
        limit = 20 + 4 * MAX_SUBTASKS + 4 * (max_revisions + 1)
        await self._enqueue(record, graph_name, coordinator_input(setup, task, plan), limit)
        return await self.store.get_run(tenant_id, run_id)

    async def get_run(self, tenant_id: str, run_id: str) -> RunRecord:
        return await self.store.get_run(tenant_id, run_id)

    async def wait(self, tenant_id: str, run_id: str, timeout_s: float = 300.0) -> RunRecord:
        """Return once the run is settled (finished or interrupted), wherever it executes."""
        try:
            async with asyncio.timeout(timeout_s):
                async for _ in self.stream(tenant_id, run_id):
                    pass
        except TimeoutError:
            raise RequestTimeout(
                f"run {run_id!r} has not settled after {timeout_s:g}s; it goes on in the"
                f" background (GET /v1/runs/{run_id})"
            ) from None
        return await self.store.get_run(tenant_id, run_id)

    async def stream(self, tenant_id: str, run_id: str) -> AsyncIterator[dict[str, Any]]:
        """The run's events from its start until it settles; a settled run's events are
        replayed from the table and end at once."""
        record = await self.store.get_run(tenant_id, run_id)

        async def ended() -> dict[str, Any] | None:
            # The run settled but its end event never reached the table (its worker died
            # between the two, or it settled before events were kept): end from the row.
            current = await self.store.get_run(tenant_id, run_id)
            if current.status in SETTLED:
                return {"run_id": run_id, "event": TERMINAL, "run": current.to_dict()}
            return None

        settled = record.status in SETTLED
        async for event in self.events.subscribe(
            run_id, on_idle=ended, idle_check_s=0.0 if settled else 2.0
        ):
            yield event

    async def cancel(self, tenant_id: str, run_id: str) -> RunRecord:
        """Cancel a queued, running or interrupted run. The status is the durable flag: the
        process executing the run sees it within ``cancel_poll_s`` and stops at the next
        node; a queued run never starts."""
        record = await self.store.get_run(tenant_id, run_id)
        if record.status in FINISHED:
            raise Conflict(f"run {run_id!r} already {record.status}")
        changed = await self.store.update_run(
            run_id, status="cancelled", only_if=("queued", "running", "interrupted")
        )
        if run_id in self._active:
            self.runtime.cancelled.add(run_id)
            running = self._tasks.get(run_id)
            if running is not None:
                running.cancel()
        if record.workflow_id:
            client = await self._queue_client()
            await asyncio.to_thread(client.cancel_workflow, record.workflow_id)
        final = await self.store.get_run(tenant_id, run_id)
        if changed:
            await self._settled(final)
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
        await self.events.clear(run_id)
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
        if self.executes:
            await self._ensure_executor()
        client = await self._queue_client()
        workflow_id = f"{record.id}:{new_id('wf')}"
        await self.store.update_run(record.id, status="queued", workflow_id=workflow_id)
        options = {
            "workflow_name": executor.WORKFLOW_NAME,
            "queue_name": executor.QUEUE_NAME,
            "workflow_id": workflow_id,
            # Threads are per tenant: another tenant's thread of the same id is another queue.
            "queue_partition_key": f"{record.tenant_id}/{record.thread_id}",
        }
        await asyncio.to_thread(
            client.enqueue, options, self.host_key, record.id, graph_name,
            record.thread_id, graph_input, limit, current_headers(),
        )  # fmt: skip

    # -- RunHost: the executing side ------------------------------------------------------
    async def begin(self, run_id: str) -> bool:
        record = await self.store.find_run(run_id)
        if record.status == "cancelled":
            return False
        # A run taken over from a dead worker is "running" already; it runs on here.
        await self.store.update_run(run_id, status="running", only_if=("queued", "running"))
        self._active.add(run_id)
        workflow = asyncio.current_task()
        if workflow is not None:
            self._workflows[run_id] = workflow
            workflow.add_done_callback(lambda _: self._workflows.pop(run_id, None))
        self.events.bind(run_id, record.tenant_id)
        self.events.publish(run_id, {"event": "run_start"})
        return True

    async def graph(self, graph_name: str) -> CompiledGraph:
        return await self._run_graphs.get(graph_name)

    async def execute(
        self, run_id: str, graph_name: str, thread_id: str, recursion_limit: int
    ) -> dict[str, Any]:
        graph = await self._run_graphs.get(graph_name)
        task = asyncio.current_task()
        if task is not None:
            self._tasks[run_id] = task
        try:
            output = await graph.ainvoke(None, thread_id=thread_id, recursion_limit=recursion_limit)
        except asyncio.CancelledError:
            if run_id not in self.runtime.cancelled or task is None:
                raise  # shutting down: the run stays pending and another worker takes it
            task.uncancel()  # our own cancel, for this run alone
            raise RunCancelled(f"run {run_id!r} was cancelled") from None
        finally:
            self._tasks.pop(run_id, None)
        interrupts = output.pop("__interrupt__", [])
        return {
            "status": "interrupted" if interrupts else "done",
            "interrupts": [{"id": i.id, "value": i.value} for i in interrupts],
            "values": output,
        }

    async def finish(self, run_id: str, result: dict[str, Any]) -> None:
        try:
            await self._record_outcome(run_id, result)
        finally:
            self._active.discard(run_id)
            self.runtime.cancelled.discard(run_id)
            self.events.unbind(run_id)

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
        elif (agent := (await self.store.find_run(run_id)).agent) == COORDINATOR_AGENT:
            # "partial": some optional subtask failed, and the answer says what is missing.
            status = "succeeded" if values.get("status") in ("succeeded", "partial") else "failed"
            keys = ("answer", "status", "plan", "results", "failures")
            changes.update(output={k: values.get(k) for k in keys}, error=values.get("error"),
                           interrupts=[])  # fmt: skip
        elif agent.startswith(GRAPH_PREFIX):
            # A plain graph has no status of its own: finishing is success, its state the output.
            status = "succeeded"
            changes.update(output=_jsonable(values), interrupts=[])
        else:
            status = "succeeded" if values.get("status") == "succeeded" else "failed"
            changes.update(output=values.get("output"), error=values.get("error"), interrupts=[])
        changed = await self.store.update_run(
            run_id, status=status, only_if=("queued", "running"), **changes
        )
        record = await self.store.find_run(run_id)
        await record_outcome(self.runtime, record, values)
        if changed:  # else it was cancelled meanwhile, and the cancel announced the end
            await self._settled(record)
        else:
            await self.events.flush()

    async def _settled(self, record: RunRecord) -> None:
        self.events.publish(
            record.id, {"event": TERMINAL, "run": record.to_dict()}, tenant_id=record.tenant_id
        )
        await self.events.flush()
        if record.webhook and self.webhooks is not None and record.status in SETTLED:
            payload = {"type": f"run.{record.status}", "run": record.to_dict()}
            task = asyncio.ensure_future(self.webhooks.deliver(record.webhook, payload))
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    async def _watch_cancels(self) -> None:
        """Turn the durable cancel flag of runs executing here into the runtime's set,
        which nodes check at every boundary."""
        while True:
            await asyncio.sleep(self.execution.cancel_poll_s)
            active = sorted(self._active - self.runtime.cancelled)
            if not active:
                continue
            try:
                cancelled = await self.store.cancelled_among(active)
            except Exception as exc:  # a database blip: look again next round
                log.warning("cancel watch failed", error=str(exc))
                continue
            self.runtime.cancelled.update(cancelled)
            for run_id in cancelled:
                # Stop what the run is doing now (a long tool call, a model stream) rather
                # than wait for its next node.
                running = self._tasks.get(run_id)
                if running is not None:
                    running.cancel()

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
