"""``/v1/memory``: agents' long-term memories and threads' short-term windows.

Thin adapter over :class:`roost.memory.service.MemoryServices`; the lifespan hook here
opens those services on ``app.state.memory`` and runs background consolidation.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from roost.errors import NotFound
from roost.memory.consolidation import ConsolidationReport
from roost.memory.service import MemoryServices
from roost.memory.short_term import Turn
from roost.memory.wire import memory_json, recalled_json

router = APIRouter(prefix="/v1/memory", tags=["memory"])


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MemoryIn(Body):
    text: str = Field(min_length=1, max_length=20_000)
    kind: Literal["fact", "episode", "summary"] = "fact"
    importance: float = Field(0.5, ge=0, le=1)
    source: dict[str, Any] = Field(default_factory=dict)
    metadata: dict[str, Any] = Field(default_factory=dict)


class SupersedeIn(Body):
    text: str = Field(min_length=1, max_length=20_000)
    importance: float = Field(0.5, ge=0, le=1)


class SearchIn(Body):
    query: str = Field(min_length=1, max_length=4_000)
    k: int = Field(5, ge=1, le=100)
    kinds: list[Literal["fact", "episode", "summary"]] | None = None
    as_of: int | None = Field(None, description="Epoch ms: answer with what was valid then")


class MessageIn(Body):
    role: Literal["system", "user", "assistant", "tool"]
    content: str = Field(max_length=200_000)
    agent_id: str = Field("default", pattern=r"^[A-Za-z0-9._:-]{1,128}$")
    pinned: bool | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)


class ConsolidateIn(Body):
    agent_id: str = Field("default", pattern=r"^[A-Za-z0-9._:-]{1,128}$")
    force: bool = False


def services(request: Request) -> MemoryServices:
    memory: MemoryServices = request.app.state.memory
    return memory


def tenant(request: Request) -> str:
    return str(request.state.principal.tenant_id)


def turn_json(turn: Turn) -> dict[str, Any]:
    return {"object": "thread.message", **turn.to_json()}


def report_json(report: ConsolidationReport) -> dict[str, Any]:
    return {
        "batch_id": report.batch_id, "num_turns": report.num_turns,
        "num_memories": report.num_memories, "summary_calls": report.summary_calls,
        "input_tokens": report.input_tokens, "output_tokens": report.output_tokens,
    }  # fmt: skip


@router.post("/agents/{agent_id}/memories", status_code=201)
async def add_memory(agent_id: str, body: MemoryIn, request: Request) -> dict[str, Any]:
    memory = await services(request).long_term.remember(
        tenant(request), agent_id, body.text, kind=body.kind, importance=body.importance,
        source=body.source, metadata=body.metadata,
    )  # fmt: skip
    return memory_json(memory)


@router.get("/agents/{agent_id}/memories")
async def list_memories(
    agent_id: str, request: Request, kind: str | None = None, include_superseded: bool = False,
    limit: int = 100,
) -> dict[str, Any]:  # fmt: skip
    found = await services(request).long_term.list_memories(
        tenant(request), agent_id, kind=kind, include_superseded=include_superseded,
        limit=max(1, min(limit, 1000)),
    )  # fmt: skip
    return {"object": "list", "data": [memory_json(m) for m in found]}


@router.get("/agents/{agent_id}/memories/{memory_id}")
async def get_memory(agent_id: str, memory_id: str, request: Request) -> dict[str, Any]:
    return memory_json(await services(request).long_term.get(tenant(request), agent_id, memory_id))


@router.post("/agents/{agent_id}/memories/{memory_id}/supersede", status_code=201)
async def supersede_memory(
    agent_id: str, memory_id: str, body: SupersedeIn, request: Request
) -> dict[str, Any]:
    memory = await services(request).long_term.supersede(
        tenant(request), agent_id, memory_id, body.text, importance=body.importance
    )
    return memory_json(memory)


@router.delete("/agents/{agent_id}/memories/{memory_id}", status_code=204)
async def delete_memory(agent_id: str, memory_id: str, request: Request) -> Response:
    if not await services(request).long_term.forget(tenant(request), agent_id, [memory_id]):
        raise NotFound(f"no memory {memory_id!r} for agent {agent_id!r}")
    return Response(status_code=204)


@router.post("/agents/{agent_id}/search")
async def search_memories(agent_id: str, body: SearchIn, request: Request) -> dict[str, Any]:
    found = await services(request).long_term.recall(
        tenant(request), agent_id, body.query, k=body.k, kinds=body.kinds, as_of=body.as_of
    )
    return {"object": "list", "data": [recalled_json(r) for r in found]}


@router.post("/threads/{thread_id}/messages", status_code=201)
async def add_message(thread_id: str, body: MessageIn, request: Request) -> dict[str, Any]:
    memory = services(request)
    if body.pinned is None:
        turn = await memory.add_turn(
            tenant(request),
            thread_id,
            body.agent_id,
            body.role,
            body.content,
            metadata=body.metadata,
        )
    else:
        turn = await memory.short_term.add(
            tenant(request), thread_id, body.role, body.content, pinned=body.pinned,
            metadata={"agent_id": body.agent_id, **body.metadata},
        )  # fmt: skip
    return turn_json(turn)


@router.get("/threads/{thread_id}/messages")
async def list_messages(thread_id: str, request: Request, window: bool = True) -> dict[str, Any]:
    """The thread's window (what a model sees), or every stored turn with ``window=false``."""
    stm = services(request).short_term
    turns = await (stm.window if window else stm.turns)(tenant(request), thread_id)
    return {
        "object": "list",
        "data": [turn_json(t) for t in turns],
        "total_tokens": sum(t.tokens for t in turns),
        "max_tokens": stm.max_tokens,
    }


@router.delete("/threads/{thread_id}", status_code=204)
async def clear_thread(thread_id: str, request: Request) -> Response:
    await services(request).short_term.clear(tenant(request), thread_id)
    return Response(status_code=204)


@router.post("/threads/{thread_id}/consolidate")
async def consolidate_thread(
    thread_id: str, body: ConsolidateIn, request: Request
) -> dict[str, Any]:
    reports = await services(request).consolidator.consolidate(
        tenant(request), thread_id, body.agent_id, force=body.force
    )
    return {"object": "list", "data": [report_json(r) for r in reports]}
