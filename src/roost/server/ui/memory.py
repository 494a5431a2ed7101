"""Memory and knowledge: search an agent's long-term memories and the knowledge base,
see sources and citations, and delete a memory or a source after a confirmation page
(a page of its own rather than a script dialog: it works without JavaScript)."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from roost.errors import NotFound, Overloaded
from roost.memory.service import MemoryServices
from roost.memory.wire import hit_json, memory_json, recalled_json, source_json
from roost.security.principal import Principal, Role
from roost.server.ui.render import page
from roost.server.ui.session import Posted, posted, require_role, see_other, signed_in

router = APIRouter()
SignedIn = Annotated[Principal, Depends(signed_in)]
Acting = Annotated[Posted, Depends(posted)]
Text = Annotated[str, Query(max_length=4000)]
AGENT_ID = r"^[A-Za-z0-9._:-]{0,128}$"


def _memory(request: Request) -> MemoryServices:
    memory: MemoryServices | None = getattr(request.app.state, "memory", None)
    if memory is None:
        raise Overloaded("memory is off in this process")
    return memory


@router.get("/ui/memory")
async def memory_page(
    request: Request,
    principal: SignedIn,
    agent: Annotated[str, Query(max_length=128, pattern=AGENT_ID)] = "",
    q: Text = "",
) -> Response:
    long_term = _memory(request).long_term
    agent_ids = [a.name for a in await request.app.state.agents.registry.list(principal.tenant_id)]
    found: list[dict[str, object]] = []
    if agent and q:
        found = [recalled_json(r) for r in await long_term.recall(principal.tenant_id, agent, q)]
    elif agent:
        listed = await long_term.list_memories(principal.tenant_id, agent, limit=100)
        found = [memory_json(m) for m in listed]
    return page(
        request, "memory.html", title="Memory", section="memory", agent=agent, q=q,
        agents=agent_ids, memories=found, searched=bool(agent and q),
        can_delete=principal.role.includes(Role.MEMBER),
    )  # fmt: skip


@router.get("/ui/memory/{agent}/{memory_id}/delete")
async def confirm_memory_delete(
    agent: str, memory_id: str, request: Request, principal: SignedIn
) -> Response:
    memory = await _memory(request).long_term.get(principal.tenant_id, agent, memory_id)
    return page(
        request, "confirm.html", title="Delete memory", section="memory",
        what=f"the memory of agent {agent}", text=memory.text,
        action=f"/ui/memory/{quote(agent)}/{quote(memory_id)}/delete", back=f"/ui/memory?agent={quote(agent)}",
        fields={},
    )  # fmt: skip


@router.post("/ui/memory/{agent}/{memory_id}/delete")
async def delete_memory(agent: str, memory_id: str, request: Request, acting: Acting) -> Response:
    require_role(acting.principal, Role.MEMBER, "delete memories")
    if not await _memory(request).long_term.forget(acting.principal.tenant_id, agent, [memory_id]):
        raise NotFound(f"no memory {memory_id!r} for agent {agent!r}")
    return see_other(f"/ui/memory?agent={quote(agent)}")


@router.get("/ui/knowledge")
async def knowledge_page(
    request: Request,
    principal: SignedIn,
    collection: Annotated[str, Query(max_length=100)] = "",
    q: Text = "",
) -> Response:
    kb = _memory(request).knowledge
    collections = await kb.list_collections(principal.tenant_id)
    sources: list[dict[str, object]] = []
    hits: list[dict[str, object]] = []
    if collection:
        sources = [source_json(s) for s in await kb.sources(principal.tenant_id, collection)]
        if q:
            hits = [hit_json(h) for h in await kb.search(principal.tenant_id, collection, q)]
    return page(
        request, "knowledge.html", title="Knowledge", section="knowledge",
        collections=collections, collection=collection, q=q, sources=sources, hits=hits,
        can_delete=principal.role.includes(Role.MEMBER),
    )  # fmt: skip


@router.get("/ui/knowledge/{collection}/delete")
async def confirm_source_delete(
    collection: str,
    request: Request,
    principal: SignedIn,
    uri: Annotated[str, Query(min_length=1, max_length=2000)],
) -> Response:
    kb = _memory(request).knowledge
    if not any(s.uri == uri for s in await kb.sources(principal.tenant_id, collection)):
        raise NotFound(f"no source {uri!r} in {collection!r}")
    return page(
        request, "confirm.html", title="Delete source", section="knowledge",
        what=f"the source of collection {collection}", text=uri,
        action=f"/ui/knowledge/{quote(collection)}/delete", back=f"/ui/knowledge?collection={quote(collection)}",
        fields={"uri": uri},
    )  # fmt: skip


@router.post("/ui/knowledge/{collection}/delete")
async def delete_source(collection: str, request: Request, acting: Acting) -> Response:
    require_role(acting.principal, Role.MEMBER, "delete knowledge")
    uri = acting.form.get("uri")
    if not isinstance(uri, str) or not uri:
        raise NotFound("no source given")
    await _memory(request).knowledge.remove_source(acting.principal.tenant_id, collection, uri)
    return see_other(f"/ui/knowledge?collection={quote(collection)}")
