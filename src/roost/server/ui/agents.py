"""Agents: the registry with every version, a diff between two versions, and a form that
starts a run (on a new thread, or a given one) and opens its live page."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from roost.agents.registry import AgentVersion
from roost.errors import InvalidRequest
from roost.security.principal import Principal, Role
from roost.server.agents import agents_service
from roost.server.ui.render import page
from roost.server.ui.session import Posted, field, posted, require_role, see_other, signed_in
from roost.server.ui.version_diff import version_diff

router = APIRouter()
SignedIn = Annotated[Principal, Depends(signed_in)]
Acting = Annotated[Posted, Depends(posted)]


def spec_text(version: AgentVersion) -> str:
    data: dict[str, Any] = version.spec.model_dump(mode="json")
    return json.dumps(data, indent=2, sort_keys=True, default=str, ensure_ascii=False)


@router.get("/ui/agents")
async def agents_page(request: Request, principal: SignedIn) -> Response:
    agents = await agents_service(request.app).registry.list(principal.tenant_id)
    return page(request, "agents.html", title="Agents", section="agents", agents=agents)


@router.get("/ui/agents/{name}")
async def agent_page(
    name: str,
    request: Request,
    principal: SignedIn,
    a: Annotated[int | None, Query(ge=1)] = None,
    b: Annotated[int | None, Query(ge=1)] = None,
) -> Response:
    registry = agents_service(request.app).registry
    versions = await registry.versions(principal.tenant_id, name)
    by_number = {v.version: v for v in versions}
    newest = max(by_number)
    texts = {number: spec_text(version) for number, version in by_number.items()}
    diff = version_diff(f"agent {name!r}", texts, a, b)
    return page(
        request, "agent.html", title=f"Agent {name}", section="agents", name=name,
        versions=versions, current=by_number[newest], spec=spec_text(by_number[newest]),
        diff=diff, a=a or max(1, newest - 1), b=b or newest,
        can_run=principal.role.includes(Role.MEMBER),
    )  # fmt: skip


@router.post("/ui/agents/{name}/runs")
async def start_run(name: str, request: Request, acting: Acting) -> Response:
    principal = acting.principal
    require_role(principal, Role.MEMBER, "start runs")
    text = field(acting.form, "input")
    if not text:
        raise InvalidRequest("write the run's input", param="input")
    version_field = field(acting.form, "version")
    version: int | None = int(version_field) if version_field.isdigit() else None
    service = agents_service(request.app)
    thread_id = field(acting.form, "thread_id")
    if thread_id:
        await service.store.get_thread(principal.tenant_id, thread_id)  # 404 when not theirs
    else:
        thread_id = (await service.create_thread(principal.tenant_id, {"via": "ui"})).id
    run = await service.start_run(principal.tenant_id, thread_id, name, text, version=version)
    return see_other(f"/ui/runs/{run.id}")
