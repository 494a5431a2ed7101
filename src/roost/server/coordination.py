"""``/v1/coordination/sessions``: several agents discussing one topic (seed 000).

    POST /v1/coordination/sessions                 {"topic", "agents": [names]}
    GET  /v1/coordination/sessions/{id}            topic, agents, public transcript
    POST /v1/coordination/sessions/{id}/turn       {"agent", "message"?, "stream"?}
    POST /v1/coordination/sessions/{id}/round      {"message"?, "stream"?}
    POST /v1/coordination/sessions/{id}/whisper    {"agent", "message"}
    POST /v1/coordination/sessions/{id}/vote       {"question", "options"}

With ``"stream": true`` turn and round answer as SSE: ``token`` events (agent, text),
then ``done`` with what was said.

``/v1/coordinate`` (seed 000's path) answers every route above as an alias:
``POST /v1/coordinate``, ``GET /v1/coordinate/{id}``, ``POST /v1/coordinate/{id}/turn`` …
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from roost.agents.coordination import CoordinationService, TokenSink
from roost.server.agents import agents_service
from roost.server.sse import event_stream, sse_event

router = APIRouter(tags=["coordination"])
PREFIX = "/v1/coordination/sessions"
ALIAS = "/v1/coordinate"  # seed 000's name for the same API
F = TypeVar("F", bound=Callable[..., Any])


def post(path: str, **options: Any) -> Callable[[F], F]:
    """``POST`` under the sessions prefix and under the alias."""

    def register(endpoint: F) -> F:
        router.post(PREFIX + path, **options)(endpoint)
        router.post(ALIAS + path, **options)(endpoint)
        return endpoint

    return register


def get(path: str) -> Callable[[F], F]:
    def register(endpoint: F) -> F:
        router.get(PREFIX + path)(endpoint)
        router.get(ALIAS + path)(endpoint)
        return endpoint

    return register


class CreateBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    topic: str = Field(min_length=1)
    agents: list[str] = Field(min_length=1)


class TurnBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    agent: str
    message: str | None = None
    stream: bool = False


class RoundBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    message: str | None = None
    stream: bool = False


class WhisperBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    agent: str
    message: str = Field(min_length=1)


class VoteBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    question: str = Field(min_length=1)
    options: list[str] = Field(min_length=2)


def _service(request: Request) -> CoordinationService:
    service = agents_service(request.app)
    return CoordinationService(service.store.database, service.registry, service.runtime.llm)


def _tenant(request: Request) -> str:
    return str(request.state.principal.tenant_id)


@post("", status_code=201)
async def create_session(body: CreateBody, request: Request) -> dict[str, Any]:
    session = await _service(request).create(_tenant(request), body.topic, body.agents)
    return session.to_dict()


@get("/{session_id}")
async def get_session(session_id: str, request: Request) -> dict[str, Any]:
    return (await _service(request).get(_tenant(request), session_id)).to_dict()


@post("/{session_id}/turn", response_model=None)
async def turn(session_id: str, body: TurnBody, request: Request) -> Response | dict[str, Any]:
    service, tenant_id = _service(request), _tenant(request)

    def work(sink: TokenSink | None) -> Awaitable[Any]:
        return service.turn(tenant_id, session_id, body.agent, body.message, on_token=sink)

    if body.stream:
        await service.get(tenant_id, session_id)
        return event_stream(_streamed(work))
    return dict(await work(None))


@post("/{session_id}/round", response_model=None)
async def round_(session_id: str, body: RoundBody, request: Request) -> Response | dict[str, Any]:
    service, tenant_id = _service(request), _tenant(request)

    def work(sink: TokenSink | None) -> Awaitable[Any]:
        return service.round(tenant_id, session_id, body.message, on_token=sink)

    if body.stream:
        await service.get(tenant_id, session_id)
        return event_stream(_streamed(work))
    return {"object": "list", "data": await work(None)}


@post("/{session_id}/whisper")
async def whisper(session_id: str, body: WhisperBody, request: Request) -> dict[str, Any]:
    return await _service(request).whisper(_tenant(request), session_id, body.agent, body.message)


@post("/{session_id}/vote")
async def vote(session_id: str, body: VoteBody, request: Request) -> dict[str, Any]:
    return await _service(request).vote(_tenant(request), session_id, body.question, body.options)


async def _streamed(work: Callable[[TokenSink | None], Awaitable[Any]]) -> AsyncIterator[bytes]:
    queue: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
    task = asyncio.ensure_future(work(lambda agent, text: queue.put_nowait((agent, text))))
    try:
        while not task.done() or not queue.empty():
            getter = asyncio.ensure_future(queue.get())
            await asyncio.wait({getter, task}, return_when=asyncio.FIRST_COMPLETED)
            if getter.done():
                agent, text = getter.result()
                yield sse_event("token", {"agent": agent, "text": text})
            else:
                getter.cancel()
        result = task.result()
        yield sse_event("done", {"data": result if isinstance(result, list) else [result]})
    finally:
        task.cancel()
