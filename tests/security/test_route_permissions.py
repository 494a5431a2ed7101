"""The permission table covers every route exactly, and encodes the platform's policy."""

from __future__ import annotations

import pytest

from roost.config import Settings
from roost.errors import Forbidden, NotFound
from roost.security.principal import Principal, Role
from roost.security.route_permissions import (
    ROUTE_PERMISSIONS,
    RULES,
    Permission,
    RouteRules,
    authorize,
)
from roost.server.app import create_app
from roost.server.route_inventory import app_routes, require_every_route_classified

PUBLIC_ROUTES = {
    ("GET", "/health/live"),
    ("GET", "/health/ready"),
    ("GET", "/metrics"),
    ("GET", "/openapi.json"),
    ("GET", "/docs"),
    # the web UI's sign-in and static files, and the API docs' assets
    ("ANY", "/docs/assets"),
    ("ANY", "/ui/static"),
    ("GET", "/ui/login"),
    ("POST", "/ui/login"),
    ("POST", "/ui/logout"),
    # signing in through an OIDC issuer: the start of the flow and the issuer's redirect back
    ("GET", "/ui/login/oidc/{n}"),
    ("GET", "/ui/login/oidc/{n}/callback"),
}


@pytest.fixture(scope="module")
def routes() -> list[tuple[str, str]]:
    return app_routes(create_app(Settings()))


def test_every_route_has_a_rule_and_every_rule_a_route(routes: list[tuple[str, str]]) -> None:
    missing = [f"{m} {p}" for m, p in routes if (m, p) not in ROUTE_PERMISSIONS]
    stale = [f"{m} {p}" for m, p in ROUTE_PERMISSIONS if (m, p) not in set(routes)]
    assert missing == [], f"routes without a permission entry: {missing}"
    assert stale == [], f"permission entries without a route: {stale}"
    assert len(routes) > 90


def test_the_app_refuses_to_start_with_an_unclassified_route() -> None:
    from fastapi import APIRouter

    app = create_app(Settings())
    stray = APIRouter()

    @stray.get("/v1/unclassified")
    async def unclassified() -> dict[str, str]:
        return {}

    app.include_router(stray)
    with pytest.raises(RuntimeError, match="GET /v1/unclassified"):
        require_every_route_classified(app)


def test_policy_of_the_table() -> None:
    """The rules the table must keep, stated independently of its entries."""
    for (method, path), rule in ROUTE_PERMISSIONS.items():
        if (method, path) in PUBLIC_ROUTES:
            assert rule.permission == Permission.PUBLIC
            continue
        assert rule.permission != Permission.PUBLIC, (method, path)
        # Writes are never a viewer's.
        if method not in ("GET", "WS"):
            assert rule.permission != Permission.VIEWER, (method, path)
        # The platform's admin routes are an operator's unless they name the caller's tenant.
        if path.startswith("/admin/") and rule.tenant_param is None and path != "/admin/whoami":
            assert rule.permission == Permission.OPERATOR, (method, path)
        if rule.tenant_param is not None:
            assert "{" + rule.tenant_param + "}" in path, (method, path)
    # Spot checks of the role definitions.
    assert ROUTE_PERMISSIONS[("POST", "/v1/chat/completions")].permission == Permission.MEMBER
    assert ROUTE_PERMISSIONS[("POST", "/v1/agents")].permission == Permission.OWNER
    assert ROUTE_PERMISSIONS[("GET", "/v1/runs/{run_id}")].permission == Permission.VIEWER
    assert ROUTE_PERMISSIONS[("POST", "/admin/models/swap")].permission == Permission.OPERATOR
    assert ROUTE_PERMISSIONS[("DELETE", "/admin/caches/{cache_id}")].permission == "operator"


def test_no_static_path_is_shadowed_by_a_template_of_the_same_method() -> None:
    """Lookups try exact paths first; that equals the routers' order only without overlaps."""
    templated = RouteRules({k: v for k, v in ROUTE_PERMISSIONS.items() if "{" in k[1]})
    for method, path in ROUTE_PERMISSIONS:
        if "{" not in path:
            assert templated.match(method, path) is None, (method, path)


def test_lookup_finds_templates_and_their_parameters() -> None:
    matched = RULES.match("DELETE", "/admin/tenants/ten_1/keys/abc")
    assert matched is not None
    assert matched.template == "/admin/tenants/{tenant_id}/keys/{key_id}"
    assert matched.params == {"tenant_id": "ten_1", "key_id": "abc"}
    assert RULES.match("HEAD", "/v1/models").template == "/v1/models"  # type: ignore[union-attr]
    assert RULES.match("GET", "/v1/models/org/name") is not None  # {model_id:path}
    assert RULES.match("GET", "/v1/threads/a/b/c") is None
    assert RULES.match("WS", "/v1/runs/r1/ws") is not None


def _principal(role: Role, operator: bool = False, tenant: str = "ten_a") -> Principal:
    return Principal(tenant, "k1", role, operator)


def test_authorize_roles_operator_and_tenant_objects() -> None:
    chat = RULES.match("POST", "/v1/chat/completions")
    assert chat is not None
    authorize(_principal(Role.MEMBER), chat)
    with pytest.raises(Forbidden, match="needs the member role; the caller is viewer"):
        authorize(_principal(Role.VIEWER), chat)
    swap = RULES.match("POST", "/admin/models/swap")
    assert swap is not None
    with pytest.raises(Forbidden, match="operator"):
        authorize(_principal(Role.OWNER), swap)  # owning a tenant is not operating the platform
    authorize(_principal(Role.VIEWER, operator=True), swap)
    keys = RULES.match("GET", "/admin/tenants/ten_a/keys")
    other = RULES.match("GET", "/admin/tenants/ten_b/keys")
    assert keys is not None and other is not None
    authorize(_principal(Role.OWNER), keys)
    with pytest.raises(Forbidden):
        authorize(_principal(Role.MEMBER), keys)
    with pytest.raises(NotFound):
        authorize(_principal(Role.OWNER), other)  # another tenant: not revealed
    with pytest.raises(NotFound):
        authorize(_principal(Role.VIEWER), other)  # 404 before 403: existence stays hidden
    authorize(_principal(Role.VIEWER, operator=True, tenant="ten_x"), other)
