"""A run queued by `roost serve` and executed by a `roost worker` process is one trace:
the server writes the request's span, the worker the run's, both into the same
PostgreSQL database, joined by the traceparent the queue entry carries."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.observe.trace_helpers import CALLER_TRACE, TRACEPARENT, ancestors, flatten, named
from tests.runs.test_distributed import KEY, SPEC, STEPS, _env
from tests.support.process import ServerProcess, start_server, start_worker
from tests.support.servers import PostgresServer

pytestmark = [pytest.mark.slow, pytest.mark.postgres]


@pytest.fixture(scope="module")
def server_and_worker(
    postgres_server: PostgresServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("traced")
    (root / "effects").mkdir()
    env = {**_env(postgres_server.create_database(), root / "server-home", root / "effects"),
           "ROOST_TRACING__FLUSH_INTERVAL_MS": "100"}  # fmt: skip
    server = start_server({**env, "ROOST_RUNS__WORKERS": "0"})
    worker = start_worker({**env, "ROOST_HOME": str(root / "worker")}, "--concurrency", "1")
    try:
        yield server
    finally:
        for process in (worker, server):
            if process.process.poll() is None:
                process.stop()


def test_a_run_on_a_worker_continues_the_requests_trace(server_and_worker: ServerProcess) -> None:
    headers = {"Authorization": f"Bearer {KEY}"}
    with httpx.Client(base_url=server_and_worker.url, headers=headers, timeout=60) as client:
        assert client.post("/v1/agents", json={"spec": SPEC}).status_code == 201
        thread = client.post("/v1/threads", json={}).json()["id"]
        run = client.post(
            f"/v1/threads/{thread}/runs", json={"agent": "stepper", "input": "go", "mode": "wait"},
            headers={"traceparent": TRACEPARENT},
        ).json()  # fmt: skip
        assert run["status"] == "succeeded", run
        trace = _wait_for_worker_spans(client, CALLER_TRACE, run["id"])

    spans = flatten(trace["spans"])
    (request,) = named(spans, "POST /v1/threads/")
    (agent,) = named(spans, "invoke_agent stepper")
    assert agent["parent_span_id"] == request["span_id"]  # across the two processes
    assert agent["attributes"]["roost.run_id"] == run["id"]
    tool_calls = named(spans, "execute_tool scripted_step")
    assert len(tool_calls) == STEPS
    for span in tool_calls + named(spans, "chat "):
        assert "invoke_agent stepper" in ancestors(span, spans)
        assert span["attributes"]["roost.run_id"] == run["id"]


def _wait_for_worker_spans(client: httpx.Client, trace_id: str, run_id: str) -> dict[str, Any]:
    """The worker writes its spans in its own batches: poll until the run's span is in."""
    deadline = time.monotonic() + 30
    while True:
        found = client.get(f"/v1/traces/{trace_id}")
        if found.status_code == 200 and named(flatten(found.json()["spans"]), "invoke_agent"):
            body: dict[str, Any] = found.json()
            assert body["run_id"] == run_id
            return body
        assert time.monotonic() < deadline, found.text
        time.sleep(0.1)
