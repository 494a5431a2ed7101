"""``/v1/agents``: register agent specs (immutable versions, tags) and read them back.
The run service they feed is the kernel's (``app.state.agents``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, FastAPI, Request
from pydantic import BaseModel, ConfigDict, Field

from roost.agents.catalog import AgentCatalog
from roost.agents.service import AgentRunService
from roost.errors import Overloaded

router = APIRouter(tags=["agents"])


class CreateAgentBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    spec: dict[str, Any]
    tags: list[str] = Field(default_factory=list, description="Tags to point at this version")


class TagBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tag: str = Field(min_length=1, max_length=64)
    version: int = Field(ge=1)


def agents_service(app: FastAPI) -> AgentRunService:
    """The app's agent run service (threads/runs/coordination endpoints use it)."""
    service: AgentRunService | None = getattr(app.state, "agents", None)
    if service is None:
        raise Overloaded("the agents runtime is not running in this process")
    return service


@router.post("/v1/agents", status_code=201)
async def create_agent(body: CreateAgentBody, request: Request) -> dict[str, Any]:
    """Register a spec: a new version when it differs from the newest, else that version.
    400 listing every problem (``errors``) when the spec is invalid or names a model or
    tool this deployment does not offer."""
    catalog: AgentCatalog | None = getattr(request.app.state, "catalog", None)
    if catalog is None:
        raise Overloaded("the agents runtime is not running in this process")
    version, created = await catalog.create(
        request.state.principal.tenant_id, body.spec, tags=body.tags
    )
    return {**version.to_dict(), "created": created}


@router.get("/v1/agents")
async def list_agents(request: Request) -> dict[str, Any]:
    """The newest version of every agent of the caller's tenant."""
    registry = agents_service(request.app).registry
    agents = await registry.list(request.state.principal.tenant_id)
    return {"object": "list", "data": [a.to_dict() for a in agents]}


@router.get("/v1/agents/{name}")
async def get_agent(name: str, request: Request, version: str | None = None) -> dict[str, Any]:
    """One version: ``?version=3``, ``?version=prod`` (a tag), or the newest."""
    registry = agents_service(request.app).registry
    return (await registry.get(request.state.principal.tenant_id, name, version)).to_dict()


@router.get("/v1/agents/{name}/versions")
async def agent_versions(name: str, request: Request) -> dict[str, Any]:
    registry = agents_service(request.app).registry
    versions = await registry.versions(request.state.principal.tenant_id, name)
    return {"object": "list", "data": [v.to_dict() for v in versions]}


@router.post("/v1/agents/{name}/tags")
async def tag_agent(name: str, body: TagBody, request: Request) -> dict[str, Any]:
    """Point a tag (``prod``, ``staging``) at a version."""
    registry = agents_service(request.app).registry
    tenant_id = request.state.principal.tenant_id
    await registry.tag(tenant_id, name, body.tag, body.version)
    return (await registry.get(tenant_id, name, body.version)).to_dict()


async def resume_after_approval(app: FastAPI, tenant_id: str, run_id: str | None) -> None:
    """Called by the approvals endpoint after a decision: resume the agent run it paused
    once none of that run's approvals is pending (in the background; the run's events and
    ``GET /v1/runs/{id}`` show its progress)."""
    service: AgentRunService | None = getattr(app.state, "agents", None)
    tools = getattr(app.state, "tools", None)
    if service is None or tools is None or run_id is None:
        return

    async def is_pending(approval_id: str) -> bool:
        return bool((await tools.approvals.get(tenant_id, approval_id)).status == "pending")

    await service.resume_if_decided(tenant_id, run_id, is_pending)
