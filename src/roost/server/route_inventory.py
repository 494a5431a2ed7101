"""Every route the app serves, as (method, path template), and the check that each has a rule.

The server refuses to start when a route has no entry in the permission table: a route
nobody classified must not be reachable with whatever role happens to call it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Any

from fastapi import FastAPI
from starlette.routing import BaseRoute, Route, WebSocketRoute

from roost.security.route_permissions import ROUTE_PERMISSIONS, Rule


def app_routes(app: FastAPI) -> list[tuple[str, str]]:
    """(method, template) of every route, ``WS`` for WebSockets; HEAD folds into GET."""
    return sorted(set(_walk(app.router.routes, "")))


def _walk(routes: Iterable[BaseRoute], prefix: str) -> Iterator[tuple[str, str]]:
    for route in routes:
        included: Any = getattr(route, "original_router", None)
        if included is not None:  # FastAPI's record of app.include_router(...)
            context = getattr(route, "include_context", None)
            yield from _walk(included.routes, prefix + str(getattr(context, "prefix", "")))
        elif isinstance(route, WebSocketRoute):
            yield "WS", prefix + route.path
        elif isinstance(route, Route):
            for method in route.methods or ():
                if method != "HEAD":
                    yield method, prefix + route.path
        else:  # a Mount or something new: it must be classified before it can be served
            yield "ANY", prefix + str(getattr(route, "path", repr(route)))


def unclassified_routes(app: FastAPI, table: dict[tuple[str, str], Rule]) -> list[str]:
    return [f"{method} {path}" for method, path in app_routes(app) if (method, path) not in table]


def document_permissions(app: FastAPI) -> None:
    """Name each operation's permission in the OpenAPI document (``x-roost-permission``,
    and ``x-roost-tenant-param`` where the path names the tenant acted on)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = build()
        templates = {
            (method, re.sub(r":[a-z]+}", "}", path)): rule
            for (method, path), rule in ROUTE_PERMISSIONS.items()
        }
        for path, item in document.get("paths", {}).items():
            for method, operation in item.items():
                rule = templates.get((method.upper(), path))
                if rule is not None and isinstance(operation, dict):
                    operation["x-roost-permission"] = rule.permission.value
                    if rule.tenant_param:
                        operation["x-roost-tenant-param"] = rule.tenant_param
        app.openapi_schema = document
        return document

    app.openapi = openapi  # type: ignore[method-assign]


def require_every_route_classified(app: FastAPI) -> None:
    missing = unclassified_routes(app, ROUTE_PERMISSIONS)
    if missing:
        raise RuntimeError(
            "routes without an entry in roost.security.route_permissions: " + ", ".join(missing)
        )
