"""``/admin/tenants/{tenant_id}/keys``: a tenant's API keys — create (with a role), list,
change role, revoke, rotate. Owners manage their own tenant's keys; operators any tenant's.

Only an operator may make an operator key or touch one: a tenant owner must not be able
to mint, rotate away or revoke the platform's keys.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

from roost.errors import Forbidden
from roost.security.api_keys import ApiKey, parse_role
from roost.security.principal import Principal

router = APIRouter(prefix="/admin/tenants/{tenant_id}/keys", tags=["admin"])


class KeyCreate(BaseModel):
    name: str = Field("api", min_length=1, max_length=100)
    role: str = Field(max_length=40, description="owner, member or viewer")
    operator: bool = Field(False, description="a platform operator key (operators only)")
    expires_at: int | None = Field(None, ge=0, description="ms since the epoch")


class KeyUpdate(BaseModel):
    role: str = Field(max_length=40, description="owner, member or viewer")


def key_json(key: ApiKey) -> dict[str, Any]:
    status = "revoked" if key.revoked_at else ("active" if key.is_active else "expired")
    return {
        "object": "api_key",
        "id": key.id,
        "tenant_id": key.tenant_id,
        "name": key.name,
        "role": key.role.value,
        "operator": key.operator,
        "status": status,
        "created_at": key.created_at,
        "expires_at": key.expires_at,
        "revoked_at": key.revoked_at,
        "last_used_at": key.last_used_at,
    }


def _caller(request: Request) -> Principal:
    principal: Principal = request.state.principal
    return principal


async def _audit(
    request: Request, tenant_id: str, action: str, key_id: str, **details: Any
) -> None:
    await request.app.state.platform.audit.record(
        tenant_id, _caller(request).actor, action, target=key_id, details=details or None
    )


async def _modifiable(request: Request, tenant_id: str, key_id: str) -> ApiKey:
    key: ApiKey = await request.app.state.platform.api_keys.get(key_id, tenant_id)
    if key.operator and not _caller(request).operator:
        raise Forbidden("only an operator may change an operator key", required="operator")
    return key


@router.get("")
async def list_keys(tenant_id: str, request: Request) -> dict[str, Any]:
    await request.app.state.platform.tenants.get(tenant_id)
    keys = await request.app.state.platform.api_keys.list(tenant_id)
    return {"object": "list", "data": [key_json(k) for k in keys]}


@router.post("", status_code=201)
async def create_key(tenant_id: str, body: KeyCreate, request: Request) -> dict[str, Any]:
    """Make a key; the response carries its secret, shown only this once."""
    role = parse_role(body.role)
    if body.operator and not _caller(request).operator:
        raise Forbidden("only an operator may create an operator key", required="operator")
    platform = request.app.state.platform
    await platform.tenants.get(tenant_id)
    key, plaintext = await platform.api_keys.create(
        tenant_id, body.name, role=role, operator=body.operator, expires_at=body.expires_at
    )
    await _audit(request, tenant_id, "api_key.create", key.id, role=role.value,
                 operator=body.operator)  # fmt: skip
    return key_json(key) | {"key": plaintext}


@router.patch("/{key_id}")
async def update_key(
    tenant_id: str, key_id: str, body: KeyUpdate, request: Request
) -> dict[str, Any]:
    role = parse_role(body.role)
    await _modifiable(request, tenant_id, key_id)
    key = await request.app.state.platform.api_keys.set_role(key_id, role, tenant_id)
    await _audit(request, tenant_id, "api_key.role", key_id, role=role.value)
    return key_json(key)


@router.delete("/{key_id}", status_code=204)
async def revoke_key(tenant_id: str, key_id: str, request: Request) -> Response:
    await _modifiable(request, tenant_id, key_id)
    await request.app.state.platform.api_keys.revoke(key_id, tenant_id)
    await _audit(request, tenant_id, "api_key.revoke", key_id)
    return Response(status_code=204)


@router.post("/{key_id}/rotate")
async def rotate_key(tenant_id: str, key_id: str, request: Request) -> dict[str, Any]:
    """A new secret for the key (same id and role); the old one stops working now."""
    await _modifiable(request, tenant_id, key_id)
    key, plaintext = await request.app.state.platform.api_keys.rotate(key_id, tenant_id)
    await _audit(request, tenant_id, "api_key.rotate", key_id)
    return key_json(key) | {"key": plaintext}
