"""``/mcp``: Roost's tools over MCP Streamable HTTP, behind the usual API-key auth.

The SDK's session manager is built in the lifespan hook (it needs the tool service), so
the route is a small ASGI shim that forwards to whatever manager the app holds. The
server is stateless and answers in JSON: every request carries its own API key, so no
MCP session needs to outlive a request.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI
from mcp.server.context import ServerRequestContext
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from roost.errors import Unauthorized
from roost.tools.mcp_server import build_mcp_server
from roost.tools.permissions import Caller

router = APIRouter(tags=["mcp"])


class _McpEndpoint:
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        manager: StreamableHTTPSessionManager = scope["app"].state.mcp_manager
        await manager.handle_request(scope, receive, send)


router.routes.append(Route("/mcp", endpoint=_McpEndpoint(), methods=["GET", "POST", "DELETE"]))


def _http_caller(ctx: ServerRequestContext[Any]) -> Caller:
    principal = getattr(getattr(ctx.request, "state", None), "principal", None)
    if principal is None:
        raise Unauthorized("no authenticated caller on this MCP request")
    return Caller.from_principal(principal)


@asynccontextmanager
async def mcp_lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Serve the tool service at ``/mcp`` (entered by the tools hook once the service is open)."""
    settings = app.state.platform.settings
    server = build_mcp_server(app.state.tools.executor, _http_caller)
    # With keys required a forged Host gains nothing; without them (local development)
    # DNS-rebinding protection keeps web pages from driving the tools.
    security = (
        TransportSecuritySettings(enable_dns_rebinding_protection=False)
        if settings.auth.mode == "enabled"
        else TransportSecuritySettings(
            allowed_hosts=["127.0.0.1:*", "localhost:*", "[::1]:*"],
            allowed_origins=["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"],
        )
    )
    manager = StreamableHTTPSessionManager(
        app=server, json_response=True, stateless=True, security_settings=security
    )
    app.state.mcp_manager = manager
    # The manager's task group must be entered and exited by one task; an app's lifespan
    # may be set up and torn down by different tasks (test fixtures do), so a task owns it.
    started, stop = asyncio.Event(), asyncio.Event()

    async def own_manager() -> None:
        async with manager.run():
            started.set()
            await stop.wait()

    owner = asyncio.create_task(own_manager(), name="mcp-session-manager")
    waiter = asyncio.ensure_future(started.wait())
    await asyncio.wait({owner, waiter}, return_when=asyncio.FIRST_COMPLETED)
    if owner.done():
        waiter.cancel()
        owner.result()  # raises why the manager could not start
    try:
        yield
    finally:
        stop.set()
        await owner
