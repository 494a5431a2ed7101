"""ASGI middleware of every request: context (id, logs, metrics, span), body limit,
time limit, and authentication. Pure ASGI so streaming responses pass through untouched."""

from __future__ import annotations

import asyncio
import contextlib
import re
import secrets
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import structlog
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from roost.errors import (
    Forbidden,
    HeadersTooLarge,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    RequestTimeout,
    RoostError,
    Unauthorized,
)
from roost.observe import metrics
from roost.observe.logging import get_logger
from roost.observe.propagation import extract_asgi
from roost.observe.tracing import get_tracer
from roost.security.jwt import JwtVerifier, looks_like_jwt
from roost.security.principal import Principal, Role
from roost.security.route_permissions import RULES, MatchedRule, authorize
from roost.server.error_format import error_body

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

PUBLIC_PATHS = RULES.public_paths()
# The web UI signs its users in itself (a session cookie, roost.server.ui.session, whose
# pages check the session principal's role), and the API docs' own script and style files
# carry nothing private. Their routes are in the permission table as "session"/"public".
PUBLIC_PREFIXES = ("/ui/", "/docs/assets/")


def is_public(path: str) -> bool:
    return path in PUBLIC_PATHS or path == "/ui" or path.startswith(PUBLIC_PREFIXES)


_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
log = get_logger("roost.http")


def request_state(scope: Scope) -> dict[str, Any]:
    state: dict[str, Any] = scope.setdefault("state", {})
    return state


async def send_error(send: Send, scope: Scope, error: RoostError) -> None:
    status, headers, body = error_body(
        error, path=scope.get("path", ""), request_id=request_state(scope).get("request_id")
    )
    raw_headers = [(k.encode(), v.encode()) for k, v in headers.items()]
    raw_headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": body})


# RFC 6455 leaves 4000-4999 to applications: 4401 mirrors HTTP 401.
WS_CLOSE_UNAUTHORIZED = 4401


async def deny_websocket(send: Send, scope: Scope, error: RoostError) -> None:
    """Refuse a WebSocket handshake: an HTTP answer where the server can send one (the ASGI
    denial-response extension), else a close before accept, with an application code."""
    if "websocket.http.response" in scope.get("extensions", {}):
        status, headers, body = error_body(
            error, path=scope.get("path", ""), request_id=request_state(scope).get("request_id")
        )
        raw_headers = [(k.encode(), v.encode()) for k, v in headers.items()]
        raw_headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "websocket.http.response.start", "status": status,
                    "headers": raw_headers})  # fmt: skip
        await send({"type": "websocket.http.response.body", "body": body})
        return
    code = WS_CLOSE_UNAUTHORIZED if error.status == 401 else 1008
    await send({"type": "websocket.close", "code": code, "reason": error.message[:120]})


class RequestContextMiddleware:
    """Request id (taken from ``x-request-id`` when sane), access log, metrics, server span."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.tracer = get_tracer("roost.server")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = _header(scope, b"x-request-id")
        request_id = incoming if incoming and _REQUEST_ID.match(incoming) else secrets.token_hex(8)
        request_state(scope)["request_id"] = request_id
        method, path = scope["method"], scope["path"]
        status = 500
        started = time.perf_counter()
        first_byte: float | None = None

        async def send_with_id(message: Message) -> None:
            nonlocal status, first_byte
            if message["type"] == "http.response.start":
                status = message["status"]
                first_byte = time.perf_counter()
                message.setdefault("headers", []).append((b"x-request-id", request_id.encode()))
            await send(message)

        structlog.contextvars.bind_contextvars(request_id=request_id)
        metrics.HTTP_IN_FLIGHT.inc()
        # A caller's traceparent makes this request a span of the caller's trace.
        parent = extract_asgi(scope.get("headers", []))
        with self.tracer.start_as_current_span(
            f"{method} {path}", context=parent, kind=SpanKind.SERVER
        ) as span:
            span.set_attribute("http.request.method", method)
            span.set_attribute("url.path", path)
            span.set_attribute("roost.request_id", request_id)
            try:
                await self.app(scope, receive, send_with_id)
            except Exception:
                log.exception("unhandled error", method=method, path=path)
                if first_byte is not None:
                    raise  # a stream already begun can only be cut off
                await send_internal_error(send_with_id, scope)
            finally:
                if first_byte is None and request_state(scope).get("client_gone"):
                    status = 499  # nginx's "client closed request": nothing was answered
                metrics.HTTP_IN_FLIGHT.dec()
                route = _route_template(scope)
                span.set_attribute("http.route", route)
                span.set_attribute("http.response.status_code", status)
                if status >= 500:
                    span.set_status(Status(StatusCode.ERROR))
                elapsed = (first_byte or time.perf_counter()) - started
                metrics.HTTP_REQUESTS.labels(method, route, str(status)).inc()
                metrics.HTTP_DURATION.labels(method, route).observe(elapsed)
                log.info(
                    "request",
                    method=method,
                    path=path,
                    status=status,
                    duration_ms=round((time.perf_counter() - started) * 1000, 2),
                )
                structlog.contextvars.unbind_contextvars("request_id")


async def send_internal_error(send: Send, scope: Scope) -> None:
    await send_error(
        send, scope, RoostError("internal error; the server log has details under this request id")
    )


class BodyLimitMiddleware:
    """Refuse bodies over ``max_bytes`` with 413, by Content-Length or by counting the stream."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        too_large = PayloadTooLarge(f"request body exceeds the limit of {self.max_bytes} bytes")
        declared = _header(scope, b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await send_error(send, scope, too_large)
            return
        received = 0
        exceeded = False
        replaced = False

        async def counting_receive() -> Message:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    exceeded = True
                    raise too_large
            return message

        async def guarded_send(message: Message) -> None:
            # Frameworks may turn the error raised in receive into their own 400;
            # whatever they answer, the client is told the real reason.
            nonlocal replaced
            if exceeded:
                if not replaced:
                    replaced = True
                    await send_error(send, scope, too_large)
                return
            await send(message)

        await self.app(scope, counting_receive, guarded_send)


class HeaderLimitMiddleware:
    """Refuse requests whose header lines add up to more than ``max_bytes`` with 431."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            size = sum(len(k) + len(v) + 4 for k, v in scope.get("headers", []))
            if size > self.max_bytes:
                error = HeadersTooLarge(
                    f"request headers take {size} bytes; the limit is {self.max_bytes}"
                )
                if scope["type"] == "http":
                    await send_error(send, scope, error)
                else:
                    await send({"type": "websocket.close", "code": 1009})
                return
        await self.app(scope, receive, send)


class TimeoutMiddleware:
    """Answer 504 when no response has started within ``timeout_s``.

    Only the wait for the first byte is limited: a stream that has begun runs on,
    bounded by its own token limits.
    """

    def __init__(self, app: ASGIApp, timeout_s: float) -> None:
        self.app = app
        self.timeout_s = timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        response_started = asyncio.Event()

        async def watched_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                response_started.set()
            await send(message)

        handler = asyncio.ensure_future(self.app(scope, receive, watched_send))
        first_byte = asyncio.ensure_future(response_started.wait())
        done, _ = await asyncio.wait(
            {handler, first_byte}, timeout=self.timeout_s, return_when=asyncio.FIRST_COMPLETED
        )
        first_byte.cancel()
        if not done:
            handler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await handler
            await send_error(
                send, scope, RequestTimeout(f"request took longer than {self.timeout_s:g} s")
            )
            return
        await handler


class AuthMiddleware:
    """Resolve ``Authorization: Bearer <key or JWT>`` or ``x-api-key`` to a :class:`Principal`,
    then check it against the route's rule (``roost.security.route_permissions``).

    Every path but health, metrics and the API docs requires credentials. With auth
    disabled (local development only) every request acts as the operator and owner of
    the default tenant.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        path = route_path(scope)
        # Public by path, whatever the method: a wrong method there is the router's 405.
        if is_public(path):
            await self.app(scope, receive, send)
            return
        matched = RULES.match("WS" if kind == "websocket" else scope["method"], path)
        state = scope["app"].state
        try:
            principal = await self._principal(state, scope)
        except (Unauthorized, RateLimited) as exc:
            metrics.AUTH_FAILURES.inc()
            await _refuse(send, scope, exc)
            return
        try:
            _check(principal, matched)
        except (Forbidden, NotFound) as exc:
            await _refuse(send, scope, exc)
            return
        request_state(scope)["principal"] = principal
        structlog.contextvars.bind_contextvars(tenant_id=principal.tenant_id)
        # Files the request's span (and, by inheritance, its children) under the tenant.
        trace.get_current_span().set_attribute("roost.tenant_id", principal.tenant_id)
        try:
            await self.app(scope, receive, send)
        finally:
            structlog.contextvars.unbind_contextvars("tenant_id")

    async def _principal(self, state: Any, scope: Scope) -> Principal:
        if state.platform.settings.auth.mode == "disabled":
            return Principal(state.default_tenant_id, None, Role.OWNER, operator=True)
        presented = _bearer_token(scope) or _header(scope, b"x-api-key")
        if not presented:
            raise Unauthorized(
                "missing API key: send 'Authorization: Bearer <key or JWT>' or 'x-api-key: <key>'"
            )
        client = scope.get("client")
        client_host = client[0] if client else None
        if looks_like_jwt(presented):
            verifier: JwtVerifier = state.jwt
            try:
                return await verifier.verify(presented)
            except Unauthorized:
                await _count_failure(state, client_host, presented)
                raise
        return await principal_for_key(state, presented, client_host)


def route_path(scope: Scope) -> str:
    """The path the router matches: without the ``root_path`` a proxy mounts the app under
    (as Starlette's own routing does), so rule and route always see the same path."""
    path: str = scope["path"]
    root = scope.get("root_path", "")
    if root and path.startswith(root) and (len(path) == len(root) or path[len(root)] == "/"):
        return path[len(root) :]
    return path


def _check(principal: Principal, matched: MatchedRule | None) -> None:
    # No rule means no route (the app refuses to start with a route the table lacks):
    # the router answers 404 or 405 for it.
    if matched is not None:
        authorize(principal, matched)


async def _refuse(send: Send, scope: Scope, error: RoostError) -> None:
    if scope["type"] == "websocket":
        await deny_websocket(send, scope, error)
    else:
        await send_error(send, scope, error)


async def principal_for_key(state: Any, presented: str, client_host: str | None) -> Principal:
    """Who a presented API key acts as: :class:`Unauthorized` for a bad key, and
    :class:`RateLimited` once its id or address is locked out. The web UI's sign-in calls
    this too, so a key means the same in the browser as on the API."""
    try:
        key = await state.platform.api_keys.verify(presented)
    except Unauthorized:
        await _count_failure(state, client_host, presented)
        raise
    return Principal(key.tenant_id, key.id, key.role, key.operator)


async def _count_failure(state: Any, client_host: str | None, presented: str) -> None:
    """Brute-force throttling: raises RateLimited once the key id or address is locked out."""
    limiter = getattr(state, "limits", None)
    if limiter is not None:
        await limiter.record_login_failure(presented, client_host)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return str(value.decode("latin-1"))
    return None


def _bearer_token(scope: Scope) -> str | None:
    value = _header(scope, b"authorization")
    if value is None:
        return None
    scheme, _, token = value.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def _route_template(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return str(path) if path else "unmatched"
