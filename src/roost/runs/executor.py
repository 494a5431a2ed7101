"""Runs as DBOS workflows: one workflow for every kind of run (agent, graph, coordinator).

The workflow is ``begin`` → ``record_input`` → ``execute`` → ``finish``, each a DBOS step,
so a run whose worker died resumes in another process without repeating a finished
step; ``execute`` itself resumes the graph from its last checkpoint, so finished nodes
never run again. Steps are ``async``: DBOS is launched on the process's event loop, so a
run executes on the same loop as the clients it uses (models, tools, database), with no
thread or loop in between.

DBOS is one instance per process and its workflows are module-level functions; they find
the process's :class:`RunHost` (the kernel's run service) by deployment key.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

from dbos import DBOS, DBOSClient
from opentelemetry.trace import Status, StatusCode

from roost.graph import CompiledGraph
from roost.observe.propagation import extract
from roost.observe.tracing import get_tracer

APP_NAME = "roost"
# Fixed, so that any worker can take over any run (DBOS matches runs to code versions).
APP_VERSION = "roost-runs-2"
QUEUE_NAME = "roost-runs"
WORKFLOW_NAME = "roost.run"
_tracer = get_tracer("roost.runs")


class RunHost(Protocol):
    """The process side of a run: builds graphs and records status and outcomes."""

    async def begin(self, run_id: str) -> bool:
        """Mark the run running; False when it must not run (cancelled meanwhile)."""
        ...

    async def graph(self, graph_name: str) -> CompiledGraph: ...

    async def execute(
        self, run_id: str, graph_name: str, thread_id: str, recursion_limit: int
    ) -> dict[str, Any]:
        """Run (or resume) the graph on the thread; its final state and interrupts."""
        ...

    async def finish(self, run_id: str, result: dict[str, Any]) -> None: ...


_hosts: dict[str, RunHost] = {}
_lock = threading.Lock()
_launched: dict[str, Any] = {"url": None, "users": 0, "executor_id": None}


def _host(key: str) -> RunHost:
    try:
        return _hosts[key]
    except KeyError:
        raise LookupError(f"no run host {key!r} in this process") from None


@DBOS.step(name="roost.run.begin")
async def begin(host_key: str, run_id: str) -> bool:
    return await _host(host_key).begin(run_id)


@DBOS.step(name="roost.run.record_input")
async def record_input(host_key: str, graph_name: str, thread_id: str, run_input: Any) -> None:
    graph = await _host(host_key).graph(graph_name)
    await graph.aprepare(run_input, thread_id=thread_id)


@DBOS.step(name="roost.run.execute")
async def execute(
    host_key: str, run_id: str, graph_name: str, thread_id: str, recursion_limit: int
) -> dict[str, Any]:
    return await _host(host_key).execute(run_id, graph_name, thread_id, recursion_limit)


@DBOS.step(name="roost.run.finish")
async def finish(host_key: str, run_id: str, result: dict[str, Any]) -> None:
    await _host(host_key).finish(run_id, result)


@DBOS.workflow(name=WORKFLOW_NAME)
async def run_workflow(
    host_key: str,
    run_id: str,
    graph_name: str,
    thread_id: str,
    run_input: Any,
    recursion_limit: int,
    trace_headers: dict[str, str] | None = None,
) -> str:
    if not await begin(host_key, run_id):
        return "skipped"
    _, _, tenant_id, agent, *_ = graph_name.split("/")
    # The run continues the trace of the request that queued it (``trace_headers``), in
    # whichever process executes it. Runs queued before this argument existed have None.
    parent = extract(trace_headers) if trace_headers else None
    with _tracer.start_as_current_span(f"invoke_agent {agent}", context=parent) as span:
        span.set_attribute("gen_ai.operation.name", "invoke_agent")
        span.set_attribute("gen_ai.agent.name", agent)
        span.set_attribute("roost.tenant_id", tenant_id)
        span.set_attribute("gen_ai.conversation.id", thread_id)
        span.set_attribute("roost.run_id", run_id)
        _record_setup(span, run_input)
        try:
            if run_input is not None:
                await record_input(host_key, graph_name, thread_id, run_input)
            result = await execute(host_key, run_id, graph_name, thread_id, recursion_limit)
        except Exception as exc:  # the run failed; it records why, the workflow is done
            result = {"status": "error", "error": f"{type(exc).__name__}: {exc}"}
            span.set_attribute("error.type", type(exc).__name__)
            span.set_status(Status(StatusCode.ERROR, str(exc)[:200]))
        span.set_attribute("roost.run.status", str(result["status"]))
    await finish(host_key, run_id, result)
    return str(result["status"])


def _record_setup(span: Any, run_input: Any) -> None:
    """The managed prompt version and experiment variant the run started with."""
    setup = run_input.get("setup") if isinstance(run_input, dict) else None
    if not isinstance(setup, dict):
        return
    prompt = setup.get("prompt") or {}
    if prompt:
        span.set_attribute("roost.prompt.name", str(prompt["name"]))
        span.set_attribute("roost.prompt.version", int(prompt["version"]))
        span.set_attribute("roost.prompt.reference", str(prompt["reference"]))
    if setup.get("model"):
        span.set_attribute("roost.run.model", str(setup["model"]))
    experiment = setup.get("experiment") or {}
    if experiment:
        span.set_attribute("roost.experiment.name", str(experiment["name"]))
        span.set_attribute("roost.experiment.variant", str(experiment["variant"]))


def new_executor_id() -> str:
    """Unique per process start: a restarted worker is a new worker, whose predecessor's
    runs are taken over like any dead worker's."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


async def launch(
    host_key: str,
    host: RunHost,
    *,
    system_database_url: str,
    concurrency: int,
    executor_id: str,
) -> str:
    """Register ``host`` and make sure DBOS runs in this process; returns the executor id
    in use (the first host's, when several share a process).

    Runs on the event loop's thread: DBOS then runs every async workflow on this loop.
    """
    with _lock:
        running_for = _launched["url"]
        if running_for is not None and running_for != system_database_url:
            # One DBOS per process polls one database: a host of another database would
            # queue runs that nothing here ever executes.
            raise RuntimeError(
                "this process already executes the runs of another database; a process"
                " executes the runs of one database (is an earlier platform still open?)"
            )
        _hosts[host_key] = host
        _launched["users"] += 1
        if _launched["users"] > 1:
            return str(_launched["executor_id"])
        config: dict[str, Any] = {
            "name": APP_NAME,
            "system_database_url": system_database_url,
            "application_version": APP_VERSION,
            "executor_id": executor_id,
            "log_level": "WARNING",
        }
        try:
            DBOS(config=config)  # type: ignore[arg-type]
            DBOS.launch()
        except BaseException:
            _hosts.pop(host_key, None)
            _launched["users"] -= 1
            DBOS.destroy()
            raise
        _launched.update(url=system_database_url, executor_id=executor_id)
    try:
        await DBOS.register_queue_async(
            QUEUE_NAME,
            worker_concurrency=concurrency,
            partition_concurrency=1,  # one run at a time per thread
            polling_interval_sec=0.05,
            on_conflict="always_update",
        )
    except BaseException:
        # Failed or cancelled half-way: leave nothing launched behind for this host.
        await asyncio.shield(shutdown(host_key))
        raise
    return executor_id


async def shutdown(host_key: str) -> None:
    """Unregister ``host``; the last one out destroys DBOS (from its own thread: DBOS's
    thread pool, which it also made the loop's default, is shut down meanwhile)."""
    with _lock:
        _hosts.pop(host_key, None)
        _launched["users"] -= 1
        last = _launched["users"] == 0
    if not last:
        return
    loop = asyncio.get_running_loop()
    with ThreadPoolExecutor(1, thread_name_prefix="roost-dbos-stop") as stopper:
        await loop.run_in_executor(stopper, DBOS.destroy)
    # asyncio.to_thread must keep working for everything else on this loop.
    loop.set_default_executor(ThreadPoolExecutor(thread_name_prefix="asyncio"))
    _launched.update(url=None, executor_id=None)


def queue_client(system_database_url: str) -> DBOSClient:
    """A client that enqueues and cancels runs without executing any; it creates DBOS's
    tables first, so a server that only enqueues can be the first process to start."""
    DBOS.migrate(system_database_url)
    return DBOSClient(system_database_url=system_database_url)


def recover(executor_ids: list[str]) -> int:
    """Re-enqueue the unfinished runs of dead executors; any live worker then takes them.
    Safe to repeat: DBOS admits one runner per re-enqueued run."""
    return len(DBOS._recover_pending_workflows(executor_ids))
