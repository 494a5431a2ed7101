"""Every state-changing HTTP call leaves an audit record; every request binds its audit context.

The record is written when the handler starts its response, *before* the first byte goes
out: ``http:<METHOD> <route template>``, the path parameters as target, the status as
outcome. If the append fails the client is told so (503) instead of the handler's answer,
so no caller is ever told "done" by an unaudited call. Domain events the HTTP layer cannot
see (tool calls, approvals, swaps) are written by the services with the same request id,
taken from the :mod:`roost.security.audit_context` bound here.

Web UI forms are audited the same way: their principal, resolved from the session inside
the route, is in the request state by the time the response starts.

POSTs that only read or compute (chat, embeddings, searches, trace ingest) are not
"state-changing" and are left out: they would put a write on every inference request.
"""

from __future__ import annotations

from typing import Any

from roost.errors import StorageUnavailable
from roost.observe.logging import get_logger
from roost.security import audit_context
from roost.security.audit_context import AuditContext
from roost.security.principal import Principal
from roost.server.middleware import ASGIApp, Message, Receive, Scope, Send, request_state
from roost.server.middleware import send_error as send_problem

log = get_logger("roost.audit")
STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# (method, route template) of POSTs that change nothing a tenant would audit.
QUERY_ROUTES = frozenset(
    {
        ("POST", "/v1/chat/completions"),
        ("POST", "/v1/completions"),
        ("POST", "/v1/messages"),
        ("POST", "/v1/messages/count_tokens"),
        ("POST", "/v1/embeddings"),
        ("POST", "/v1/knowledge/collections/{collection}/search"),
        ("POST", "/v1/memory/agents/{agent_id}/search"),
        ("POST", "/code/search"),
        ("POST", "/v1/otel/v1/traces"),
        # MCP's JSON-RPC transport: its tool calls are audited by the tool executor
        # (``tool.call``), the protocol chatter around them is not.
        ("POST", "/mcp"),
        ("DELETE", "/mcp"),
    }
)
# The same for the web UI's forms (not in the OpenAPI document): the chat playground.
UI_QUERY_ROUTES = frozenset({("POST", "/ui/playground")})


def _is_ui_form(scope: Scope) -> bool:
    path = str(scope.get("path", ""))
    return scope.get("method") in STATE_CHANGING and path.startswith("/ui/")


def outcome_of(status: int) -> str:
    if status < 400:
        return "ok"
    if status in (401, 403, 429):
        return "denied"
    return "rejected" if status < 500 else "error"


class AuditMiddleware:
    """Runs inside authentication, so the principal is known (unauthenticated calls are
    counted by the auth failure metric and the login throttle, not audited per tenant)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        principal = request_state(scope).get("principal")
        if scope["type"] == "http" and principal is None and _is_ui_form(scope):
            # A web UI form: its principal comes from the session, resolved inside the
            # route; the record is written once it is known (none for sign-in itself).
            await self._audited(scope, receive, send, None, request_state(scope).get("request_id"))
            return
        if scope["type"] != "http" or not isinstance(principal, Principal):
            await self.app(scope, receive, send)
            return
        request_id = request_state(scope).get("request_id")
        token = audit_context.bind(AuditContext(request_id, principal.actor, principal.role.value))
        try:
            if scope["method"] in STATE_CHANGING:
                await self._audited(scope, receive, send, principal, request_id)
            else:
                await self.app(scope, receive, send)
        finally:
            audit_context.unbind(token)

    async def _audited(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        principal: Principal | None,
        request_id: Any,
    ) -> None:
        state = {"recorded": False, "failed": False}

        async def audited_send(message: Message) -> None:
            if state["failed"]:
                return  # the handler's answer was replaced by the 503
            if message["type"] == "http.response.start" and not state["recorded"]:
                state["recorded"] = True
                if not await self._record(scope, principal, request_id, message["status"]):
                    state["failed"] = True
                    await send_problem(send, scope, StorageUnavailable(
                        "the audit log could not record this call; treat it as not confirmed"
                    ))  # fmt: skip
                    return
            await send(message)

        try:
            await self.app(scope, receive, audited_send)
        except Exception:
            if not state["recorded"]:
                state["recorded"] = True
                await self._record(scope, principal, request_id, 500)
            raise

    async def _record(
        self, scope: Scope, principal: Principal | None, request_id: Any, status: int
    ) -> bool:
        if principal is None:
            principal = request_state(scope).get("principal")
            if not isinstance(principal, Principal):
                return True  # a UI form posted without a session: nobody to record
        method = scope["method"]
        route = getattr(scope.get("route"), "path", None)
        if route is None:
            if status in (404, 405):
                return True  # no such route: nothing changed
            route = scope["path"]  # refused before routing (rate limit): the raw path
        if (method, route) in QUERY_ROUTES or (method, route) in UI_QUERY_ROUTES:
            return True
        params = scope.get("path_params") or {}
        target = ",".join(f"{k}={v}" for k, v in sorted(params.items())) or None
        try:
            await scope["app"].state.platform.audit.record(
                principal.tenant_id, principal.actor, f"http:{method} {route}",
                target=target, outcome=outcome_of(status), request_id=request_id,
                role=principal.role.value,
                details={"status": status, "path": scope["path"], "operator": principal.operator},
            )  # fmt: skip
        except Exception:
            log.exception("audit append failed", method=method, route=route)
            return False
        return True
