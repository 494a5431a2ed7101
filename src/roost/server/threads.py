"""Threads and runs, the platform's main API (a thin adapter over AgentRunService).

POST /v1/threads                      create a thread
GET  /v1/threads/{id}                 its state (messages, output, pending interrupts)
GET  /v1/threads/{id}/history         its checkpoints, newest first
POST /v1/threads/{id}/runs            run an agent: mode wait | background | stream (SSE)
GET  /v1/threads/{id}/runs            the thread's runs, newest first
GET  /v1/runs/{id}                    a run: status, output, usage, error, interrupts
POST /v1/runs/{id}/cancel             cancel a queued, running or interrupted run
POST /v1/runs/{id}/resume             continue an interrupted run (after approvals)
GET  /v1/runs/{id}/events             SSE of the run's events until it settles
POST /execute, GET /session/{id}      seed 004's aliases (a thread per session)
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any, Literal

from fastapi import APIRouter, Request, Response, WebSocket
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import StreamingResponse

from roost.agents.service import AgentRunService
from roost.agents.store import RunRecord
from roost.errors import InvalidRequest, NotFound
from roost.server.agents import agents_service
from roost.server.sse import event_stream, sse_event

router = APIRouter(tags=["threads"])
Mode = Literal["wait", "background", "stream"]


class ThreadBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    metadata: dict[str, Any] = Field(default_factory=dict)


class RunBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    agent: str | None = Field(None, description="Agent name")
    graph: str | None = Field(None, description="A registered graph (agents.graphs)")
    version: int | str | None = Field(None, description="Version number or tag; default newest")
    input: str | dict[str, Any]
    variables: dict[str, Any] = Field(default_factory=dict)
    mode: Mode = "wait"
    webhook: str | None = Field(None, description="POSTed the run when it settles (signed)")
    timeout_s: float = Field(300.0, gt=0, le=3600, description="How long mode=wait waits")


class ResumeBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    answers: dict[str, Any] | None = Field(None, description="Interrupt id -> answer")
    mode: Mode = "background"
    timeout_s: float = Field(300.0, gt=0, le=3600)


class ExecuteBody(BaseModel):
    """Seed 004's ``POST /execute``: a run on the session's thread (made on first use)."""

    model_config = ConfigDict(extra="forbid")

    agent: str
    input: str
    session_id: str | None = None
    variables: dict[str, Any] = Field(default_factory=dict)


def _starter(request: Request) -> tuple[str, str]:
    """Who starts a run (actor, role): its approvals count as this principal's requests."""
    principal = request.state.principal
    return principal.actor, str(principal.role)


def _tenant(request: Request) -> str:
    return str(request.state.principal.tenant_id)


@router.post("/v1/threads", status_code=201)
async def create_thread(request: Request, body: ThreadBody | None = None) -> dict[str, Any]:
    service = agents_service(request.app)
    thread = await service.create_thread(_tenant(request), (body or ThreadBody()).metadata)
    return thread.to_dict()


@router.get("/v1/threads/{thread_id}")
async def get_thread(thread_id: str, request: Request) -> dict[str, Any]:
    return await agents_service(request.app).thread_state(_tenant(request), thread_id)


@router.get("/v1/threads/{thread_id}/history")
async def thread_history(thread_id: str, request: Request, limit: int = 50) -> dict[str, Any]:
    service = agents_service(request.app)
    history = await service.thread_history(_tenant(request), thread_id, max(1, min(limit, 1000)))
    return {"object": "list", "data": history}


@router.get("/v1/threads/{thread_id}/runs")
async def thread_runs(thread_id: str, request: Request, limit: int = 100) -> dict[str, Any]:
    service = agents_service(request.app)
    await service.store.get_thread(_tenant(request), thread_id)
    runs = await service.store.list_runs(_tenant(request), thread_id, max(1, min(limit, 1000)))
    return {"object": "list", "data": [r.to_dict() for r in runs]}


@router.post("/v1/threads/{thread_id}/runs", response_model=None)
async def create_run(thread_id: str, body: RunBody, request: Request) -> Response | dict[str, Any]:
    """Start a run; ``wait`` answers with the settled run, ``background`` with the queued
    one (202), ``stream`` with its events as SSE."""
    if (body.graph is None) == (body.agent is None):
        raise InvalidRequest("give either 'agent' or 'graph'")
    service = agents_service(request.app)
    tenant_id = _tenant(request)
    if body.graph is not None:
        if not isinstance(body.input, dict):
            raise InvalidRequest("a graph run's input is an object of state keys", param="input")
        run = await service.start_graph_run(
            tenant_id, thread_id, body.graph, body.input, webhook=body.webhook
        )
        return await respond(service, tenant_id, run, body.mode, body.timeout_s)
    assert body.agent is not None
    actor, role = _starter(request)
    run = await service.start_run(
        tenant_id, thread_id, body.agent, body.input, version=body.version,
        variables=body.variables, webhook=body.webhook, started_by=actor, started_by_role=role,
    )  # fmt: skip
    return await respond(service, tenant_id, run, body.mode, body.timeout_s)


@router.get("/v1/runs/{run_id}")
async def get_run(run_id: str, request: Request) -> dict[str, Any]:
    return (await agents_service(request.app).get_run(_tenant(request), run_id)).to_dict()


@router.post("/v1/runs/{run_id}/cancel")
async def cancel_run(run_id: str, request: Request) -> dict[str, Any]:
    return (await agents_service(request.app).cancel(_tenant(request), run_id)).to_dict()


@router.post("/v1/runs/{run_id}/resume", response_model=None)
async def resume_run(
    run_id: str, request: Request, body: ResumeBody | None = None
) -> Response | dict[str, Any]:
    """Continue an interrupted run, e.g. after its approvals were decided."""
    body = body or ResumeBody()
    service = agents_service(request.app)
    tenant_id = _tenant(request)
    run = await service.resume(tenant_id, run_id, body.answers)
    return await respond(service, tenant_id, run, body.mode, body.timeout_s)


@router.get("/v1/runs/{run_id}/events")
async def run_events(run_id: str, request: Request) -> StreamingResponse:
    service = agents_service(request.app)
    await service.get_run(_tenant(request), run_id)
    return event_stream(_sse(service.stream(_tenant(request), run_id)))


@router.websocket("/v1/runs/{run_id}/ws")
async def run_socket(websocket: WebSocket, run_id: str) -> None:
    """The run's events as JSON messages until it settles; then the server closes."""
    service = agents_service(websocket.app)
    tenant_id = str(websocket.state.principal.tenant_id)
    try:
        await service.get_run(tenant_id, run_id)
    except NotFound:
        await websocket.close(code=4404, reason=f"no run {run_id!r}")
        return
    await websocket.accept()
    async for event in service.stream(tenant_id, run_id):
        await websocket.send_json(json.loads(json.dumps(event, default=str)))
    await websocket.close()


@router.post("/execute", response_model=None)
async def execute(body: ExecuteBody, request: Request) -> Response | dict[str, Any]:
    """Alias for seed 004 clients: runs ``agent`` on the session's thread and waits."""
    service = agents_service(request.app)
    tenant_id = _tenant(request)
    thread_id = body.session_id
    if thread_id is None:
        thread_id = (await service.create_thread(tenant_id)).id
    else:
        await service.store.ensure_thread(tenant_id, thread_id)
    actor, role = _starter(request)
    run = await service.start_run(
        tenant_id, thread_id, body.agent, body.input, variables=body.variables,
        started_by=actor, started_by_role=role,
    )  # fmt: skip
    settled = await service.wait(tenant_id, run.id)
    return {**settled.to_dict(), "session_id": thread_id}


@router.get("/session/{session_id}")
async def get_session(session_id: str, request: Request) -> dict[str, Any]:
    """Alias for seed 004 clients: the session's thread state."""
    return await agents_service(request.app).thread_state(_tenant(request), session_id)


async def respond(
    service: AgentRunService, tenant_id: str, run: RunRecord, mode: Mode, timeout_s: float
) -> Response | dict[str, Any]:
    if mode == "stream":
        return event_stream(_sse(service.stream(tenant_id, run.id)))
    if mode == "background":
        return JSONResponse(run.to_dict(), status_code=202)
    return (await service.wait(tenant_id, run.id, timeout_s)).to_dict()


async def _sse(events: AsyncIterator[dict[str, Any]]) -> AsyncIterator[bytes]:
    async for event in events:
        yield sse_event(str(event["event"]), json.loads(json.dumps(event, default=str)))
