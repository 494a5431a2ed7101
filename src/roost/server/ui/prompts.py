"""Prompts: every managed prompt with its versions and labels, a diff between two
versions, and moving a label (owners only, as ``POST /v1/prompts/{name}/labels``; audited like any
UI form by :mod:`roost.server.audit_http`)."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from roost.errors import InvalidRequest
from roost.prompts.store import PromptVersion, check_name
from roost.security.principal import Principal, Role
from roost.server.prompts import prompt_service
from roost.server.ui.render import page
from roost.server.ui.session import Posted, field, posted, require_role, see_other, signed_in
from roost.server.ui.version_diff import version_diff

router = APIRouter()
SignedIn = Annotated[Principal, Depends(signed_in)]
Acting = Annotated[Posted, Depends(posted)]


def version_text(version: PromptVersion) -> str:
    """What a diff compares: the template, then the config and description it carries."""
    config = json.dumps(version.config.model_dump(exclude_none=True), indent=2, sort_keys=True)
    return f"{version.template}\n--- config\n{config}\n--- description\n{version.description}"


@router.get("/ui/prompts")
async def prompts_page(request: Request, principal: SignedIn) -> Response:
    prompts = await prompt_service(request).store.list(principal.tenant_id)
    return page(request, "prompts.html", title="Prompts", section="prompts", prompts=prompts)


@router.get("/ui/prompts/{name}")
async def prompt_page(
    name: str,
    request: Request,
    principal: SignedIn,
    a: Annotated[int | None, Query(ge=1)] = None,
    b: Annotated[int | None, Query(ge=1)] = None,
) -> Response:
    check_name(name)
    versions = await prompt_service(request).store.versions(principal.tenant_id, name)
    by_number = {v.version: v for v in versions}
    newest = versions[0].version  # newest first
    texts = {number: version_text(version) for number, version in by_number.items()}
    diff = version_diff(f"prompt {name!r}", texts, a, b)
    labels = sorted({label for v in versions for label in v.labels})
    return page(
        request, "prompt.html", title=f"Prompt {name}", section="prompts", name=name,
        versions=versions, current=by_number[newest], labels=labels, diff=diff,
        a=a or max(1, newest - 1), b=b or newest,
        can_label=principal.role.includes(Role.OWNER),
    )  # fmt: skip


@router.post("/ui/prompts/{name}/labels")
async def move_label(name: str, request: Request, acting: Acting) -> Response:
    principal = acting.principal
    require_role(principal, Role.OWNER, "move prompt labels")
    check_name(name)
    label = field(acting.form, "label")
    version_field = field(acting.form, "version")
    if not version_field.isdigit():
        raise InvalidRequest("choose a version", param="version")
    service = prompt_service(request)
    await service.store.label(principal.tenant_id, name, label, int(version_field))
    service.forget(principal.tenant_id, name)
    return see_other(f"/ui/prompts/{name}")
