"""Agent runs as DBOS workflows on the durable run queue of ``roost.runs``.

The workflow records the run's input on the thread, runs the agent graph (both are the
run layer's own DBOS steps, so a crashed worker's run resumes from its last checkpoint
without repeating finished nodes), then reports the outcome to the process's
:class:`RunHost`. Runs share the queue's per-thread partitions, so two runs on one
thread never execute at once.

DBOS is one instance per process; :func:`acquire` launches it for the first service
that needs it and :func:`release` shuts it down after the last.
"""

from __future__ import annotations

import threading
from typing import Any, Protocol

from dbos import DBOS

from roost.observe.tracing import get_tracer
from roost.runs.worker import start_worker
from roost.runs.workflow import QUEUE_NAME, execute, record_input

WORKFLOW_NAME = "roost.agent_run"
_tracer = get_tracer("roost.agents")


class RunHost(Protocol):
    """The process-side half of a run: builds graphs and records outcomes (thread-safe)."""

    def ensure_graph(self, graph_name: str) -> None: ...

    def on_start(self, run_id: str) -> None: ...

    def on_finish(self, run_id: str, result: dict[str, Any]) -> None: ...


_hosts: dict[str, RunHost] = {}
_lock = threading.Lock()
_launched: dict[str, Any] = {"url": None, "users": 0}


def _host(key: str) -> RunHost:
    try:
        return _hosts[key]
    except KeyError:
        raise LookupError(f"no agent run host {key!r} in this process") from None


@DBOS.step(name="roost.agent_run.started")
def started(host_key: str, run_id: str) -> None:
    _host(host_key).on_start(run_id)


@DBOS.step(name="roost.agent_run.finished")
def finished(host_key: str, run_id: str, result: dict[str, Any]) -> None:
    _host(host_key).on_finish(run_id, result)


@DBOS.workflow(name=WORKFLOW_NAME)
def agent_run(
    host_key: str,
    run_id: str,
    graph_name: str,
    thread_id: str,
    run_input: Any,
    recursion_limit: int,
) -> str:
    host = _host(host_key)
    host.ensure_graph(graph_name)  # not a step: a recovering process must rebuild it too
    started(host_key, run_id)
    agent = graph_name.split("/")[3]
    # The span is current while the graph runs; node I/O hops to the server loop with
    # this thread's context, so chat and execute_tool spans become its children.
    with _tracer.start_as_current_span(f"invoke_agent {agent}") as span:
        span.set_attribute("gen_ai.operation.name", "invoke_agent")
        span.set_attribute("gen_ai.agent.name", agent)
        span.set_attribute("gen_ai.conversation.id", thread_id)
        span.set_attribute("roost.run_id", run_id)
        try:
            if run_input is not None:
                record_input(graph_name, thread_id, run_input)
            result = execute(graph_name, thread_id, recursion_limit)
        except Exception as exc:  # the agent failed; the run records why, the workflow is done
            result = {"status": "error", "error": f"{type(exc).__name__}: {exc}"}
            span.set_attribute("error.type", type(exc).__name__)
        span.set_attribute("roost.run.status", str(result["status"]))
    finished(host_key, run_id, result)
    return str(result["status"])


def acquire(host_key: str, host: RunHost, system_database_url: str, concurrency: int) -> str:
    """Register ``host`` and make sure DBOS runs in this process; returns the system DB URL
    in use (the first service's, when several share a process)."""
    with _lock:
        _hosts[host_key] = host
        if _launched["users"] == 0:
            start_worker({}, system_database_url=system_database_url, concurrency=concurrency)
            _launched["url"] = system_database_url
        _launched["users"] += 1
        return str(_launched["url"])


def release(host_key: str) -> None:
    with _lock:
        _hosts.pop(host_key, None)
        _launched["users"] -= 1
        if _launched["users"] == 0:
            DBOS.destroy()
            _launched["url"] = None


__all__ = ["QUEUE_NAME", "WORKFLOW_NAME", "RunHost", "acquire", "agent_run", "release"]
