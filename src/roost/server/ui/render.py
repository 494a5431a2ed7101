"""Server-rendered HTML of the web UI: one Jinja2 environment over the templates shipped in
``roost.ui``, autoescaping everything, and the response headers every page carries."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from importlib.resources import files
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader

from roost.security.principal import Principal, Role

TEMPLATE_DIR = str(files("roost.ui") / "templates")
STATIC_DIR = str(files("roost.ui") / "static")

# Scripts and styles come only from /ui/static: an injected <script> or inline handler
# would not run even if escaping ever failed.
SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
        " connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "cache-control": "no-store",
}


def _when(ms: int | float | None) -> str:
    if not ms:
        return "—"
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _pretty(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, indent=2, default=str, ensure_ascii=False)


def _bytes(n: int | float | None) -> str:
    size = float(n or 0)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"


ENV = Environment(
    loader=FileSystemLoader(TEMPLATE_DIR),
    autoescape=True,  # every template, whatever its name: user content is text
    trim_blocks=True,
    lstrip_blocks=True,
)
ENV.filters["when"] = _when
ENV.filters["pretty"] = _pretty
ENV.filters["bytes"] = _bytes

NAV = (
    ("runs", "Runs"),
    ("approvals", "Approvals"),
    ("agents", "Agents"),
    ("traces", "Traces"),
    ("memory", "Memory"),
    ("knowledge", "Knowledge"),
    ("prompts", "Prompts"),
    ("evals", "Evaluations"),
    ("experiments", "Experiments"),
    ("usage", "Usage"),
    ("playground", "Playground"),
)


def page(
    request: Request, template: str, *, status_code: int = 200, **context: Any
) -> HTMLResponse:
    """Render ``template`` with what every page shows: who is signed in, the CSRF token
    for its forms, and the navigation (audit for owners and operators, caches for
    operators)."""
    principal: Principal | None = getattr(request.state, "principal", None)
    session = getattr(request.state, "web_session", None)
    nav = list(NAV)
    if principal is not None and principal.role.includes(Role.OWNER):
        nav.append(("audit", "Audit"))  # the rule of GET /v1/audit (operators: every tenant)
    if principal is not None and getattr(request.state, "ui_operator", False):
        nav.append(("caches", "KV caches"))
    html = ENV.get_template(template).render(
        principal=principal,
        csrf=session.csrf if session is not None else "",
        nav=nav,
        section=context.pop("section", ""),
        **context,
    )
    return HTMLResponse(html, status_code=status_code, headers=dict(SECURITY_HEADERS))
