"""Who may call which route: the one table every request is checked against.

Each route (method + path template, ``WS`` for WebSockets) names the least permission it
needs. Tenant roles include the ones below them (owner > member > viewer); ``operator``
is the platform role, apart from any tenant. A rule with ``tenant_param`` acts on the
tenant named in the path: an operator may name any tenant, anyone else only their own,
and another tenant answers 404 so that its existence is not revealed. Objects addressed
by id inside the caller's tenant (agents, threads, runs, memories…) are looked up in the
caller's tenant namespace by the services, so another tenant's id is a 404 there too.

``tests/security/test_route_permissions.py`` fails when a route exists without a rule
(or a rule without a route); the server refuses a route it finds no rule for.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from roost.errors import Forbidden, NotFound
from roost.security.principal import Principal, Role


class Permission(StrEnum):
    PUBLIC = "public"  # no credentials at all: health, metrics, the API docs
    VIEWER = "viewer"
    MEMBER = "member"
    OWNER = "owner"
    OPERATOR = "operator"


@dataclass(frozen=True, slots=True)
class Rule:
    permission: Permission
    tenant_param: str | None = None  # the path parameter naming the tenant acted on


PUBLIC = Rule(Permission.PUBLIC)
VIEWER = Rule(Permission.VIEWER)
MEMBER = Rule(Permission.MEMBER)
OWNER = Rule(Permission.OWNER)
OPERATOR = Rule(Permission.OPERATOR)
OWN_TENANT_VIEWER = Rule(Permission.VIEWER, tenant_param="tenant_id")
OWN_TENANT_OWNER = Rule(Permission.OWNER, tenant_param="tenant_id")

ROUTE_PERMISSIONS: dict[tuple[str, str], Rule] = {
    # Unauthenticated by design.
    ("GET", "/health/live"): PUBLIC,
    ("GET", "/health/ready"): PUBLIC,
    ("GET", "/metrics"): PUBLIC,
    ("GET", "/openapi.json"): PUBLIC,
    ("GET", "/docs"): PUBLIC,
    # Inference: using the models is a member's work; seeing which exist is a viewer's.
    ("POST", "/v1/completions"): MEMBER,
    ("POST", "/v1/embeddings"): MEMBER,
    ("POST", "/v1/chat/completions"): MEMBER,
    ("GET", "/v1/models"): VIEWER,
    ("GET", "/v1/models/{model_id:path}"): VIEWER,
    ("POST", "/v1/messages"): MEMBER,
    ("POST", "/v1/messages/count_tokens"): MEMBER,
    # Tools and approvals.
    ("GET", "/v1/approvals"): VIEWER,
    ("GET", "/v1/approvals/{approval_id}"): VIEWER,
    ("POST", "/v1/approvals/{approval_id}"): MEMBER,
    ("GET", "/v1/tools"): VIEWER,
    ("POST", "/v1/tools/{name}/execute"): MEMBER,
    ("GET", "/tools"): VIEWER,
    ("POST", "/tool/execute"): MEMBER,
    ("POST", "/code/search"): MEMBER,
    ("GET", "/mcp"): MEMBER,
    ("POST", "/mcp"): MEMBER,
    ("DELETE", "/mcp"): MEMBER,
    # Memory and knowledge hold the tenant's content: members only, reads included.
    ("GET", "/v1/memory/agents/{agent_id}/memories"): MEMBER,
    ("POST", "/v1/memory/agents/{agent_id}/memories"): MEMBER,
    ("GET", "/v1/memory/agents/{agent_id}/memories/{memory_id}"): MEMBER,
    ("DELETE", "/v1/memory/agents/{agent_id}/memories/{memory_id}"): MEMBER,
    ("POST", "/v1/memory/agents/{agent_id}/memories/{memory_id}/supersede"): MEMBER,
    ("POST", "/v1/memory/agents/{agent_id}/search"): MEMBER,
    ("GET", "/v1/memory/threads/{thread_id}/messages"): MEMBER,
    ("POST", "/v1/memory/threads/{thread_id}/messages"): MEMBER,
    ("DELETE", "/v1/memory/threads/{thread_id}"): MEMBER,
    ("POST", "/v1/memory/threads/{thread_id}/consolidate"): MEMBER,
    ("GET", "/v1/knowledge/collections"): MEMBER,
    ("POST", "/v1/knowledge/collections"): MEMBER,
    ("GET", "/v1/knowledge/collections/{collection}"): MEMBER,
    ("DELETE", "/v1/knowledge/collections/{collection}"): MEMBER,
    ("POST", "/v1/knowledge/collections/{collection}/documents"): MEMBER,
    ("GET", "/v1/knowledge/collections/{collection}/sources"): MEMBER,
    ("DELETE", "/v1/knowledge/collections/{collection}/sources"): MEMBER,
    ("GET", "/v1/knowledge/collections/{collection}/folders"): MEMBER,
    ("GET", "/v1/knowledge/collections/{collection}/urls"): MEMBER,
    ("POST", "/v1/knowledge/collections/{collection}/urls"): MEMBER,
    ("DELETE", "/v1/knowledge/collections/{collection}/urls"): MEMBER,
    ("POST", "/v1/knowledge/collections/{collection}/sync"): MEMBER,
    ("POST", "/v1/knowledge/collections/{collection}/search"): MEMBER,
    # Usage and traces: what a viewer is for.
    ("GET", "/v1/usage"): VIEWER,
    # The audit log: an owner reads its tenant's, an operator everyone's (the route narrows).
    ("GET", "/v1/audit"): OWNER,
    ("GET", "/v1/traces"): VIEWER,
    ("GET", "/v1/traces/{trace_id}"): VIEWER,
    ("POST", "/v1/otel/v1/traces"): MEMBER,
    # Agents are defined by owners, run by members, read by viewers.
    # Prompts and experiments change what agents do: an owner's, like agent versions and tags.
    ("GET", "/v1/prompts"): VIEWER,
    ("GET", "/v1/prompts/{name}"): VIEWER,
    ("GET", "/v1/prompts/{name}/versions"): VIEWER,
    ("POST", "/v1/prompts"): OWNER,
    ("POST", "/v1/prompts/{name}/labels"): OWNER,
    ("POST", "/v1/prompts/{name}/render"): MEMBER,
    ("GET", "/v1/experiments"): VIEWER,
    ("GET", "/v1/experiments/{name}"): VIEWER,
    ("POST", "/v1/experiments"): OWNER,
    ("POST", "/v1/experiments/{name}/stop"): OWNER,
    # Datasets and evaluations run agents: a member's work; reading results, a viewer's.
    ("GET", "/v1/datasets"): VIEWER,
    ("GET", "/v1/datasets/{name}"): VIEWER,
    ("POST", "/v1/datasets"): MEMBER,
    ("POST", "/v1/datasets/{name}/items"): MEMBER,
    ("GET", "/v1/evals"): VIEWER,
    ("GET", "/v1/evals/{eval_id}"): VIEWER,
    ("POST", "/v1/evals"): MEMBER,
    ("GET", "/v1/runs/{run_id}/feedback"): VIEWER,
    ("POST", "/v1/runs/{run_id}/feedback"): MEMBER,
    ("GET", "/v1/agents"): VIEWER,
    ("POST", "/v1/agents"): OWNER,
    ("GET", "/v1/agents/{name}"): VIEWER,
    ("GET", "/v1/agents/{name}/versions"): VIEWER,
    ("POST", "/v1/agents/{name}/tags"): OWNER,
    ("POST", "/v1/threads"): MEMBER,
    ("GET", "/v1/threads/{thread_id}"): VIEWER,
    ("GET", "/v1/threads/{thread_id}/history"): VIEWER,
    ("GET", "/v1/threads/{thread_id}/runs"): VIEWER,
    ("POST", "/v1/threads/{thread_id}/runs"): MEMBER,
    ("GET", "/v1/runs/{run_id}"): VIEWER,
    ("POST", "/v1/runs/{run_id}/cancel"): MEMBER,
    ("POST", "/v1/runs/{run_id}/resume"): MEMBER,
    ("GET", "/v1/runs/{run_id}/events"): VIEWER,
    ("WS", "/v1/runs/{run_id}/ws"): VIEWER,
    ("POST", "/execute"): MEMBER,
    ("GET", "/session/{session_id}"): VIEWER,
    ("POST", "/v1/coordination/sessions"): MEMBER,
    ("POST", "/v1/coordinate"): MEMBER,
    ("GET", "/v1/coordination/sessions/{session_id}"): VIEWER,
    ("GET", "/v1/coordinate/{session_id}"): VIEWER,
    ("POST", "/v1/coordination/sessions/{session_id}/turn"): MEMBER,
    ("POST", "/v1/coordinate/{session_id}/turn"): MEMBER,
    ("POST", "/v1/coordination/sessions/{session_id}/round"): MEMBER,
    ("POST", "/v1/coordinate/{session_id}/round"): MEMBER,
    ("POST", "/v1/coordination/sessions/{session_id}/whisper"): MEMBER,
    ("POST", "/v1/coordinate/{session_id}/whisper"): MEMBER,
    ("POST", "/v1/coordination/sessions/{session_id}/vote"): MEMBER,
    ("POST", "/v1/coordinate/{session_id}/vote"): MEMBER,
    ("POST", "/v1/coordinator/runs"): MEMBER,
    ("GET", "/v1/coordinator/runs/{run_id}"): VIEWER,
    # The platform: models, every tenant's caches, the response cache — operators only.
    ("GET", "/admin/models"): OPERATOR,
    ("POST", "/admin/models/swap"): OPERATOR,
    ("GET", "/admin/caches"): OPERATOR,
    ("DELETE", "/admin/caches/{cache_id}"): OPERATOR,
    ("POST", "/admin/caches/offload"): OPERATOR,
    ("POST", "/admin/caches/{cache_id}/warm"): OPERATOR,
    ("GET", "/admin/cache"): OPERATOR,
    ("POST", "/admin/cache/clear"): OPERATOR,
    # Limits are set by the operator; an owner may read its own tenant's.
    ("GET", "/admin/limits"): OPERATOR,
    ("GET", "/admin/limits/{tenant_id}"): OWN_TENANT_OWNER,
    ("PUT", "/admin/limits/{tenant_id}"): OPERATOR,
    ("DELETE", "/admin/limits/{tenant_id}"): OPERATOR,
    # Tenants are the operator's; a tenant's keys are its owners' (and the operator's).
    ("GET", "/admin/tenants"): OPERATOR,
    ("POST", "/admin/tenants"): OPERATOR,
    ("GET", "/admin/tenants/{tenant_id}"): OWN_TENANT_VIEWER,
    ("POST", "/admin/tenants/{tenant_id}/disable"): OPERATOR,
    ("POST", "/admin/tenants/{tenant_id}/enable"): OPERATOR,
    ("GET", "/admin/tenants/{tenant_id}/keys"): OWN_TENANT_OWNER,
    ("POST", "/admin/tenants/{tenant_id}/keys"): OWN_TENANT_OWNER,
    ("PATCH", "/admin/tenants/{tenant_id}/keys/{key_id}"): OWN_TENANT_OWNER,
    ("DELETE", "/admin/tenants/{tenant_id}/keys/{key_id}"): OWN_TENANT_OWNER,
    ("POST", "/admin/tenants/{tenant_id}/keys/{key_id}/rotate"): OWN_TENANT_OWNER,
    ("GET", "/admin/tenants/{tenant_id}/budgets"): OWN_TENANT_OWNER,
    ("GET", "/admin/whoami"): VIEWER,
    # The web UI: signed in by its own session cookie (AuthMiddleware passes /ui through);
    # roost.server.ui.session checks these rules against the session's principal, so a
    # page needs what the API route behind it needs.
    ("ANY", "/docs/assets"): PUBLIC,
    ("ANY", "/ui/static"): PUBLIC,
    ("GET", "/ui/login"): PUBLIC,
    ("POST", "/ui/login"): PUBLIC,
    ("POST", "/ui/logout"): PUBLIC,
    ("GET", "/ui/login/oidc/{n}"): PUBLIC,
    ("GET", "/ui/login/oidc/{n}/callback"): PUBLIC,
    ("GET", "/ui"): VIEWER,
    ("GET", "/ui/agents"): VIEWER,
    ("GET", "/ui/agents/{name}"): VIEWER,
    ("POST", "/ui/agents/{name}/runs"): MEMBER,
    ("GET", "/ui/approvals"): VIEWER,
    ("POST", "/ui/approvals/{approval_id}"): MEMBER,
    ("GET", "/ui/runs"): VIEWER,
    ("GET", "/ui/runs/{run_id}"): VIEWER,
    ("GET", "/ui/runs/{run_id}/timeline"): VIEWER,
    ("POST", "/ui/runs/{run_id}/cancel"): MEMBER,
    ("POST", "/ui/runs/{run_id}/resume"): MEMBER,
    ("GET", "/ui/threads/{thread_id}"): VIEWER,
    ("GET", "/ui/traces"): VIEWER,
    ("GET", "/ui/traces/{trace_id}"): VIEWER,
    ("GET", "/ui/usage"): VIEWER,
    ("GET", "/ui/memory"): MEMBER,
    ("GET", "/ui/memory/{agent}/{memory_id}/delete"): MEMBER,
    ("POST", "/ui/memory/{agent}/{memory_id}/delete"): MEMBER,
    ("GET", "/ui/knowledge"): MEMBER,
    ("GET", "/ui/knowledge/{collection}/delete"): MEMBER,
    ("POST", "/ui/knowledge/{collection}/delete"): MEMBER,
    ("GET", "/ui/playground"): MEMBER,
    ("POST", "/ui/playground"): MEMBER,
    ("GET", "/ui/prompts"): VIEWER,
    ("GET", "/ui/prompts/{name}"): VIEWER,
    ("POST", "/ui/prompts/{name}/labels"): OWNER,
    ("GET", "/ui/evals"): VIEWER,
    ("GET", "/ui/evals/{eval_id}"): VIEWER,
    ("GET", "/ui/datasets/{name}"): VIEWER,
    ("GET", "/ui/experiments"): VIEWER,
    ("GET", "/ui/experiments/{name}"): VIEWER,
    # As GET /v1/audit: an owner's (its tenant), an operator's (every tenant).
    ("GET", "/ui/audit"): OWNER,
    ("GET", "/ui/audit/verify"): OWNER,
    ("GET", "/ui/caches"): OPERATOR,
    ("POST", "/ui/caches/clear"): OPERATOR,
    ("POST", "/ui/caches/session"): OPERATOR,
}

_ROLE_OF = {
    Permission.VIEWER: Role.VIEWER,
    Permission.MEMBER: Role.MEMBER,
    Permission.OWNER: Role.OWNER,
}


@dataclass(frozen=True, slots=True)
class MatchedRule:
    template: str
    rule: Rule
    params: dict[str, str]


class RouteRules:
    """The table compiled for lookups: exact paths by dict, templates by regex.

    Static paths win over templates, as they do in the routers (the tests check that no
    static path of a method is also matched by a template of that method)."""

    def __init__(self, table: dict[tuple[str, str], Rule]) -> None:
        self._static: dict[tuple[str, str], Rule] = {}
        self._templated: dict[str, list[tuple[re.Pattern[str], str, Rule]]] = {}
        for (method, template), rule in table.items():
            if "{" not in template:
                self._static[(method, template)] = rule
            else:
                entry = (_compile(template), template, rule)
                self._templated.setdefault(method, []).append(entry)

    def match(self, method: str, path: str) -> MatchedRule | None:
        method = "GET" if method == "HEAD" else method
        rule = self._static.get((method, path))
        if rule is not None:
            return MatchedRule(path, rule, {})
        for pattern, template, templated_rule in self._templated.get(method, ()):
            found = pattern.fullmatch(path)
            if found is not None:
                return MatchedRule(template, templated_rule, found.groupdict())
        return None

    def public_paths(self) -> frozenset[str]:
        return frozenset(p for (_, p), r in self._static.items() if r.permission == "public")


def _compile(template: str) -> re.Pattern[str]:
    pattern = ""
    for literal, name in re.findall(r"([^{]*)(?:\{([^}]+)\})?", template):
        pattern += re.escape(literal)
        if name:
            # Starlette's convertors: {x} is one segment, {x:path} may span several.
            param, _, convertor = name.partition(":")
            pattern += f"(?P<{param}>{_CONVERTORS[convertor or 'str']})"
    return re.compile(pattern)


_CONVERTORS = {"str": "[^/]+", "path": ".*", "int": "[0-9]+", "float": r"[0-9]+(?:\.[0-9]+)?"}


RULES = RouteRules(ROUTE_PERMISSIONS)


def authorize(principal: Principal, matched: MatchedRule) -> None:
    """Raise :class:`Forbidden` (or :class:`NotFound` for another tenant) unless allowed."""
    rule = matched.rule
    needed = rule.permission
    if needed == Permission.PUBLIC:
        return
    if needed == Permission.OPERATOR:
        if not principal.operator:
            raise Forbidden(
                "this route needs the operator role", required="operator", role=principal.role.value
            )
        return
    if rule.tenant_param is not None:
        if principal.operator:
            return  # the platform's operator acts on any tenant
        if matched.params.get(rule.tenant_param) != principal.tenant_id:
            raise NotFound("tenant not found", param=rule.tenant_param)
    role = _ROLE_OF[needed]
    if not principal.role.includes(role):
        raise Forbidden(
            f"this route needs the {role.value} role; the caller is {principal.role.value}",
            required=role.value,
            role=principal.role.value,
        )
