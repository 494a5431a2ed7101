"""The FastAPI application: factory, lifespan, middleware and error handlers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from roost import __version__
from roost.config import Settings
from roost.errors import InvalidRequest, MethodNotAllowed, NotFound, RoostError
from roost.observe.logging import get_logger
from roost.observe.tracing import configure_tracing
from roost.platform import Platform, bootstrap
from roost.platform.kernel import Roost
from roost.security.jwt import JwtVerifier
from roost.security.key_cache import VerifiedCache
from roost.security.web_sessions import WebSessionStore
from roost.server import (
    admin_cache,
    admin_caches,
    admin_keys,
    admin_limits,
    admin_models,
    admin_tenants,
    anthropic,
    api_docs,
    coordination,
    coordinator_runs,
    evals,
    experiments,
    health,
    mcp,
    openai,
    prompts,
    threads,
    traces,
)
from roost.server import agents as agents_layer
from roost.server import audit as audit_layer
from roost.server import coding as coding_layer
from roost.server import knowledge as knowledge_layer
from roost.server import memory as memory_layer
from roost.server import tools as tool_layer
from roost.server import ui as web_ui
from roost.server import usage as usage_layer
from roost.server.audit_http import AuditMiddleware
from roost.server.disconnect import DisconnectMiddleware
from roost.server.error_format import error_body
from roost.server.in_flight import InFlightMiddleware
from roost.server.input_hygiene import InputHygieneMiddleware
from roost.server.limits import LimitMiddleware
from roost.server.middleware import (
    AuthMiddleware,
    BodyLimitMiddleware,
    HeaderLimitMiddleware,
    RequestContextMiddleware,
    TimeoutMiddleware,
)
from roost.server.route_inventory import document_permissions, require_every_route_classified

log = get_logger("roost.server")

# Each adapter module contributes one router; later layers append theirs here.
ROUTERS: list[APIRouter] = [
    health.router,
    openai.router,
    anthropic.router,
    tool_layer.router,
    memory_layer.router,
    knowledge_layer.router,
    usage_layer.router,
    agents_layer.router,
    threads.router,
    coordination.router,
    coordinator_runs.router,
    coding_layer.router,
    admin_models.router,
    admin_caches.router,
    admin_limits.router,
    admin_tenants.router,
    admin_keys.router,
    traces.router,
    admin_cache.router,
    audit_layer.router,
    prompts.router,
    evals.router,
    experiments.router,
]


def create_app(settings: Settings, platform: Platform | None = None) -> FastAPI:
    """Build the app. Given a ``platform`` the app uses it and leaves closing it to the caller.

    The lifespan opens the platform kernel (every service) and exposes its services on
    ``app.state`` for the adapters; a test or embedding program may put a ready engine on
    ``app.state.engine`` beforehand, which is then used and not closed.
    """
    configure_tracing(settings.tracing)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = platform is None
        app.state.platform = platform or await Platform.open(settings)
        try:
            report = await bootstrap(app.state.platform)
            app.state.default_tenant_id = report.tenant.id
            app.state.jwt = JwtVerifier(
                settings.auth.jwt_issuers,
                app.state.platform.tenants.find_by_name,
                cache=VerifiedCache(app.state.platform.auth_changes, settings.auth.key_cache_ttl_s),
            )
            if settings.auth.mode == "disabled":
                log.warning(
                    "authentication is DISABLED: every request acts for the default tenant;"
                    " never expose this server beyond your own machine"
                )
            kernel = await Roost.open(
                settings,
                platform=app.state.platform,
                engine=getattr(app.state, "engine", None),
                server_upkeep=True,
            )
            _expose(app, kernel)
            app.state.web_sessions = await WebSessionStore.open(
                app.state.platform.database, settings.server.ui_session_ttl_s
            )
            try:
                async with mcp.mcp_lifespan(app):
                    yield
            finally:
                _expose(app, None)
                await kernel.close()
        finally:
            jwt_verifier = getattr(app.state, "jwt", None)
            if jwt_verifier is not None:
                await jwt_verifier.close()
            if owned:
                await app.state.platform.close()

    app = FastAPI(
        title="Roost",
        version=__version__,
        lifespan=lifespan,
        redoc_url=None,
        docs_url=None,  # served by api_docs from packaged assets: no CDN, works offline
        description="Self-hosted agent platform: local inference, agents, memory, tools.",
        # Roost makes its own request span, metrics and logs (RequestContextMiddleware);
        # FastAPI's native telemetry would add a second server span and a span per
        # dependency to every trace. (Older FastAPI versions keep the key in app.extra.)
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    for router in ROUTERS:
        app.include_router(router)
    api_docs.install(app)
    web_ui.install(app)
    require_every_route_classified(app)
    document_permissions(app)
    _install_error_handlers(app)
    # Added innermost first: the context middleware wraps everything, auth runs last.
    # Innermost: a request's hold on the local model ends once its response is sent.
    app.add_middleware(InFlightMiddleware)
    # Hostile bodies are refused after the rate limit: a flood of them costs one bucket hit.
    app.add_middleware(InputHygieneMiddleware, max_depth=settings.server.max_json_depth)
    app.add_middleware(LimitMiddleware)
    # Inside auth (it needs the principal), outside limits (a refused call is audited too).
    app.add_middleware(AuditMiddleware)
    app.add_middleware(AuthMiddleware)
    # Inside the time limit, whose own task a cancelled outer request would leave running.
    app.add_middleware(DisconnectMiddleware)
    app.add_middleware(TimeoutMiddleware, timeout_s=settings.server.request_timeout_s)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.server.max_body_bytes)
    app.add_middleware(HeaderLimitMiddleware, max_bytes=settings.server.max_header_bytes)
    app.add_middleware(RequestContextMiddleware)
    return app


def _expose(app: FastAPI, kernel: Roost | None) -> None:
    """The kernel's services where the adapters look for them (None after shutdown)."""
    app.state.kernel = kernel
    if kernel is not None:
        app.state.inference = kernel.inference
    app.state.tools = kernel.tools if kernel else None
    app.state.memory = kernel.memory if kernel else None
    app.state.llm = kernel.llm if kernel else None
    app.state.agents = kernel.runs if kernel else None
    app.state.catalog = kernel.catalog if kernel else None
    app.state.limits = kernel.limits if kernel else None
    app.state.guard = kernel.guard if kernel else None


def _install_error_handlers(app: FastAPI) -> None:
    def respond(request: Request, error: RoostError) -> Response:
        if web_ui.is_ui_path(request.url.path):
            return web_ui.error_page(request, error)
        status, headers, body = error_body(
            error, path=request.url.path, request_id=getattr(request.state, "request_id", None)
        )
        media_type = headers.pop("content-type")
        return Response(body, status_code=status, headers=headers, media_type=media_type)

    @app.exception_handler(RoostError)
    async def on_roost_error(request: Request, exc: RoostError) -> Response:
        return respond(request, exc)

    @app.exception_handler(RequestValidationError)
    async def on_validation_error(request: Request, exc: RequestValidationError) -> Response:
        errors: list[Any] = list(exc.errors())
        first = errors[0] if errors else {"loc": (), "msg": "invalid request"}
        loc = [str(part) for part in first.get("loc", ()) if part != "body"]
        param = ".".join(loc) or None
        message = f"{param}: {first['msg']}" if param else str(first["msg"])
        problems = [
            {"param": ".".join(str(p) for p in e.get("loc", ()) if p != "body"), "reason": e["msg"]}
            for e in errors
        ]
        return respond(request, InvalidRequest(message, param=param, errors=problems))

    @app.exception_handler(StarletteHTTPException)
    async def on_http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 404:
            return respond(request, NotFound(f"no route for {request.method} {request.url.path}"))
        if exc.status_code == 405:
            return respond(request, MethodNotAllowed(f"{request.method} is not allowed here"))
        if exc.status_code < 500:
            return respond(request, InvalidRequest(str(exc.detail)))
        return respond(request, RoostError(str(exc.detail)))
