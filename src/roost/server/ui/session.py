"""Who is signed in to the web UI, and the CSRF check of every form it posts.

A browser holds one random token in an HttpOnly, SameSite=Strict cookie (Secure when the
page came over TLS); the session behind it, with the principal and a CSRF token, lives in
the database (:mod:`roost.security.web_sessions`), so any server process of the
deployment knows it and a restart keeps people signed in.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import RedirectResponse, Response
from starlette.datastructures import FormData

from roost.errors import Forbidden, Overloaded
from roost.security.principal import Principal, Role
from roost.security.route_permissions import RULES, authorize
from roost.security.web_sessions import WebSession, WebSessionStore
from roost.server.admin_auth import require_admin
from roost.server.middleware import route_path

COOKIE = "roost_ui"
CSRF_FIELD = "csrf"
CSRF_HEADER = "x-csrf-token"


class SignInRequired(Exception):
    """No live session: the page answers with a redirect to the sign-in form."""

    def __init__(self, after: str) -> None:
        super().__init__(after)
        self.after = after


def store(request: Request) -> WebSessionStore:
    sessions: WebSessionStore | None = getattr(request.app.state, "web_sessions", None)
    if sessions is None:
        raise Overloaded("the web UI is not running in this process")
    return sessions


def safe_next(value: str | None) -> str:
    """Where to go after signing in: only a page of the UI itself (no open redirect)."""
    if value and value.startswith("/ui") and not value.startswith("//") and "\\" not in value:
        return value
    return "/ui/runs"


async def signed_in(request: Request) -> Principal:
    """FastAPI dependency of every page: the session's principal, else sign in first."""
    token = request.cookies.get(COOKIE)
    session = await store(request).get(token) if token else None
    if session is None:
        after = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise SignInRequired(after)
    # Known before the check, so the audit log names who was refused (roost.server.audit_http).
    request.state.principal = session.principal
    # The same permission table as the API, against the session's principal.
    matched = RULES.match(request.method, route_path(request.scope))
    if matched is not None:
        authorize(session.principal, matched)
    await _count_request(request, session.principal)
    request.state.web_session = session
    request.state.ui_operator = _is_operator(request)
    return session.principal


async def _count_request(request: Request, principal: Principal) -> None:
    """A page counts against the caller's requests per minute like an API call does (the
    limit middleware sees no principal on /ui: the session is resolved here)."""
    limiter = getattr(request.app.state, "limits", None)
    if limiter is None:
        return
    client = request.client.host if request.client else None
    admission = await limiter.admit(
        principal.tenant_id, principal.key_id, concurrent=False, address=client
    )
    await admission.release()  # no concurrency slot was taken: nothing is held


def _is_operator(request: Request) -> bool:
    """The platform pages follow the API's rule for /admin (roost.server.admin_auth)."""
    try:
        require_admin(request)
    except Forbidden:
        return False
    return True


def require_operator(request: Request) -> None:
    require_admin(request)


def require_role(principal: Principal, role: Role, doing: str) -> None:
    if not principal.role.includes(role):
        raise Forbidden(f"your role ({principal.role.value}) may not {doing}")


@dataclass(frozen=True, slots=True)
class Posted:
    principal: Principal
    form: FormData


async def posted(request: Request) -> Posted:
    """FastAPI dependency of every form post: signed in, and the session's CSRF token sent
    back (form field, or header for htmx requests); 403 otherwise."""
    principal = await signed_in(request)
    session: WebSession = request.state.web_session
    form = await request.form()
    sent = form.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER)
    if not isinstance(sent, str) or not hmac.compare_digest(sent, session.csrf):
        raise Forbidden("this form was sent without its CSRF token; reload the page and retry")
    return Posted(principal, form)


def field(form: FormData, name: str, default: str = "") -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else default


def see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def to_sign_in(request: Request, after: str) -> Response:
    target = f"/ui/login?next={quote(safe_next(after), safe='/')}"
    if request.headers.get("hx-request"):
        # htmx follows this header with a full page load instead of swapping in a form.
        return Response(status_code=204, headers={"hx-redirect": target})
    return see_other(target)


def set_cookie(request: Request, response: Response, token: str, max_age_s: int) -> None:
    response.set_cookie(
        COOKIE,
        token,
        max_age=max_age_s,
        path="/ui",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
