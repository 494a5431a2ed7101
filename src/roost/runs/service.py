"""Submit, inspect and cancel durable runs from any process (API server, CLI, tests)."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any, Literal

from dbos import DBOSClient, EnqueueOptions

from roost.errors import Conflict, NotFound, RequestTimeout
from roost.runs.workflow import QUEUE_NAME, WORKFLOW_NAME

RunStatus = Literal["ENQUEUED", "PENDING", "SUCCESS", "ERROR", "CANCELLED"]
ACTIVE: tuple[RunStatus, ...] = ("ENQUEUED", "PENDING")
DEFAULT_RECURSION_LIMIT = 100


@dataclass(frozen=True, slots=True)
class RunInfo:
    run_id: str
    thread_id: str
    status: str
    output: Any = None
    error: str | None = None


class RunService:
    """Runs are DBOS workflows; a run's id starts with its thread id so per-thread
    queries need no extra table."""

    def __init__(
        self, system_database_url: str, *, on_busy_thread: Literal["wait", "reject"] = "wait"
    ):
        self._client = DBOSClient(system_database_url=system_database_url)
        self.on_busy_thread = on_busy_thread

    def submit(
        self,
        graph_name: str,
        thread_id: str,
        run_input: Any,
        *,
        recursion_limit: int = DEFAULT_RECURSION_LIMIT,
    ) -> str:
        """Queue a run; returns its id. A second run on a busy thread waits its turn,
        or raises ``Conflict`` with ``on_busy_thread="reject"``."""
        if self.on_busy_thread == "reject" and self.list(thread_id=thread_id, status=ACTIVE):
            raise Conflict(f"thread {thread_id!r} already has a run in progress")
        run_id = f"{thread_id}:{uuid.uuid4().hex}"
        options: EnqueueOptions = {
            "workflow_name": WORKFLOW_NAME,
            "queue_name": QUEUE_NAME,
            "workflow_id": run_id,
            "queue_partition_key": thread_id,
        }
        self._client.enqueue(options, graph_name, thread_id, run_input, recursion_limit)
        return run_id

    def get(self, run_id: str) -> RunInfo:
        found = self._client.list_workflows(workflow_ids=[run_id])
        if not found:
            raise NotFound(f"no run {run_id!r}")
        return _info(found[0])

    def wait(self, run_id: str, timeout_s: float = 60.0, poll_s: float = 0.05) -> RunInfo:
        """Poll until the run has finished (any status but ENQUEUED/PENDING)."""
        deadline = time.monotonic() + timeout_s
        while (info := self.get(run_id)).status in ACTIVE:
            if time.monotonic() > deadline:
                raise RequestTimeout(f"run {run_id!r} still {info.status} after {timeout_s}s")
            time.sleep(poll_s)
        return info

    def cancel(self, run_id: str) -> None:
        self._client.cancel_workflow(run_id)

    def list(
        self,
        *,
        thread_id: str | None = None,
        status: RunStatus | tuple[RunStatus, ...] | None = None,
    ) -> list[RunInfo]:
        statuses: list[str] | None = (
            [status] if isinstance(status, str) else list(status) if status else None
        )
        found = self._client.list_workflows(
            name=WORKFLOW_NAME,
            status=statuses,
            workflow_id_prefix=f"{thread_id}:" if thread_id else None,
        )
        return [_info(workflow) for workflow in found]

    def close(self) -> None:
        self._client.destroy()


def _info(workflow: Any) -> RunInfo:
    thread_id = workflow.workflow_id.rsplit(":", 1)[0]
    error = None if workflow.error is None else str(workflow.error)
    return RunInfo(workflow.workflow_id, thread_id, workflow.status, workflow.output, error)
