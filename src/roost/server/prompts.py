"""``/v1/prompts``: managed prompts with immutable versions and movable labels, always in
the caller's tenant (another tenant's prompt is 404). Reads suit viewers; creating,
labelling and rendering suit members."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from roost.errors import Overloaded
from roost.prompts.service import PromptService
from roost.prompts.store import LABEL_PATTERN, NAME_PATTERN, PromptConfig, PromptRef, check_name
from roost.prompts.template import render

router = APIRouter(tags=["prompts"])


class CreatePromptBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=NAME_PATTERN)
    template: str = Field(min_length=1, max_length=100_000)
    config: PromptConfig = Field(default_factory=PromptConfig)
    description: str = Field("", max_length=2000)
    labels: list[str] = Field(default_factory=list, max_length=16)


class LabelBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    label: str = Field(pattern=LABEL_PATTERN)
    version: int = Field(ge=1)


class RenderBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    variables: dict[str, Any] = Field(default_factory=dict)
    ref: str | None = Field(None, description="A label or version number (default: latest)")


def prompt_service(request: Request) -> PromptService:
    kernel = getattr(request.app.state, "kernel", None)
    service: PromptService | None = getattr(kernel, "prompts", None)
    if service is None:
        raise Overloaded("prompt management is not running in this process")
    return service


def _ref(name: str, ref: str | None) -> PromptRef:
    check_name(name)
    return PromptRef.parse(f"{name}@{ref}" if ref else name)


@router.post("/v1/prompts", status_code=201)
async def create_prompt(body: CreatePromptBody, request: Request) -> dict[str, Any]:
    """A new version (or the newest one, unchanged, when identical: ``created`` false);
    ``labels`` move to it. 400 when the template does not parse."""
    service = prompt_service(request)
    tenant_id = request.state.principal.tenant_id
    version, created = await service.store.create(
        tenant_id, body.name, body.template, config=body.config,
        description=body.description, labels=tuple(body.labels),
    )  # fmt: skip
    service.forget(tenant_id, body.name)
    return {**version.to_dict(), "created": created}


@router.get("/v1/prompts")
async def list_prompts(request: Request) -> dict[str, Any]:
    """The newest version of each of the caller's prompts."""
    prompts = await prompt_service(request).store.list(request.state.principal.tenant_id)
    return {"object": "list", "data": [p.to_dict() for p in prompts]}


@router.get("/v1/prompts/{name}")
async def get_prompt(
    name: str,
    request: Request,
    ref: str | None = Query(None, description="A label or version number (default: latest)"),
) -> dict[str, Any]:
    found = await prompt_service(request).store.get(
        request.state.principal.tenant_id, _ref(name, ref)
    )
    return found.to_dict()


@router.get("/v1/prompts/{name}/versions")
async def list_versions(name: str, request: Request) -> dict[str, Any]:
    check_name(name)
    versions = await prompt_service(request).store.versions(request.state.principal.tenant_id, name)
    return {"object": "list", "data": [v.to_dict() for v in versions]}


@router.post("/v1/prompts/{name}/labels")
async def move_label(name: str, body: LabelBody, request: Request) -> dict[str, Any]:
    """Point a label at a version (moving it from where it was)."""
    check_name(name)
    service = prompt_service(request)
    tenant_id = request.state.principal.tenant_id
    version = await service.store.label(tenant_id, name, body.label, body.version)
    service.forget(tenant_id, name)
    return version.to_dict()


@router.post("/v1/prompts/{name}/render")
async def render_prompt(name: str, body: RenderBody, request: Request) -> dict[str, Any]:
    """The version ``ref`` names (through the cache) rendered with ``variables``: what
    an application fetches to call a model with."""
    version = await prompt_service(request).resolve(
        request.state.principal.tenant_id, _ref(name, body.ref)
    )
    return {
        "object": "prompt.rendered",
        "name": version.name,
        "version": version.version,
        "text": render(version.template, body.variables),
        "config": version.config.model_dump(exclude_none=True),
    }
