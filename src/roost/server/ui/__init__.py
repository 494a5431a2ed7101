"""The web UI at ``/ui``: server-rendered pages over the kernel's services (see
docs/adr/0003-web-ui.md). ``install`` adds its routes, static files and error pages."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles

from roost.errors import RoostError
from roost.server.ui import (
    agents,
    approvals,
    audit,
    caches,
    evals,
    memory,
    oidc,
    playground,
    prompts,
    runs,
    sign_in,
    traces,
    usage,
)
from roost.server.ui.render import STATIC_DIR, page
from roost.server.ui.session import SignInRequired, to_sign_in

ROUTERS = (
    sign_in.router,
    oidc.router,
    runs.router,
    approvals.router,
    agents.router,
    traces.router,
    memory.router,
    caches.router,
    usage.router,
    playground.router,
    prompts.router,
    evals.router,
    audit.router,
)


def install(app: FastAPI) -> None:
    for router in ROUTERS:
        app.include_router(router, include_in_schema=False)
    app.mount("/ui/static", StaticFiles(directory=STATIC_DIR), name="ui-static")

    @app.exception_handler(SignInRequired)
    async def on_sign_in_required(request: Request, exc: SignInRequired) -> Response:
        return to_sign_in(request, exc.after)


def is_ui_path(path: str) -> bool:
    return path == "/ui" or path.startswith("/ui/")


def error_page(request: Request, error: RoostError) -> Response:
    """A UI request's error as a page in the UI's own look, with the API's status code."""
    return page(
        request, "error.html", title=error.title, status_code=error.status,
        error=error, section="",
    )  # fmt: skip
