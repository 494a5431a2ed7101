"""``/ui/login`` and ``/ui/logout``: an API key in, a session cookie out.

The key is checked by the very function the API's AuthMiddleware uses, so a key that the
API refuses (unknown, revoked, expired, locked out after failures) is refused here too,
and the principal (tenant, role, operator) is the one the API would see.
"""

from __future__ import annotations

import hmac
import secrets

from fastapi import APIRouter, Request
from fastapi.responses import Response

from roost.errors import Forbidden, RateLimited, Unauthorized
from roost.security.principal import Principal
from roost.server.middleware import principal_for_key
from roost.server.ui.oidc import ui_issuers
from roost.server.ui.render import page
from roost.server.ui.session import (
    COOKIE,
    field,
    posted,
    safe_next,
    see_other,
    set_cookie,
    store,
)

router = APIRouter()
# Sign-in has no session yet: its form is protected by a double-submitted token instead.
LOGIN_COOKIE = "roost_ui_login"


def _form(request: Request, *, after: str, error: str = "", status_code: int = 200) -> Response:
    token = secrets.token_urlsafe(32)
    auth_disabled = request.app.state.platform.settings.auth.mode == "disabled"
    issuers = [(n, i.ui_label or i.issuer) for n, i in ui_issuers(request)]
    response = page(
        request, "login.html", title="Sign in", login_csrf=token, after=after, error=error,
        auth_disabled=auth_disabled, status_code=status_code, issuers=issuers,
    )  # fmt: skip
    response.set_cookie(
        LOGIN_COOKIE, token, max_age=3600, path="/ui/login", httponly=True, samesite="strict",
        secure=request.url.scheme == "https",
    )  # fmt: skip
    return response


@router.get("/ui/login")
async def login_form(request: Request, next: str | None = None) -> Response:
    return _form(request, after=safe_next(next))


@router.post("/ui/login")
async def login(request: Request) -> Response:
    form = await request.form()
    sent, expected = field(form, "csrf"), request.cookies.get(LOGIN_COOKIE, "")
    if not sent or not expected or not hmac.compare_digest(sent, expected):
        raise Forbidden("the sign-in form was sent without its CSRF token; reload and retry")
    after = safe_next(field(form, "next"))
    state = request.app.state
    if state.platform.settings.auth.mode == "disabled":
        principal = Principal(state.default_tenant_id, None)
    else:
        key = field(form, "api_key")
        if not key:
            return _form(request, after=after, error="Enter an API key.", status_code=400)
        client = request.client.host if request.client else None
        try:
            principal = await principal_for_key(state, key, client)
        except Unauthorized as exc:
            return _form(request, after=after, error=exc.message, status_code=401)
        except RateLimited as exc:
            return _form(request, after=after, error=exc.message, status_code=429)
    sessions = store(request)
    token, _ = await sessions.create(principal)
    response = see_other(after)
    set_cookie(request, response, token, sessions.ttl_ms // 1000)
    response.delete_cookie(LOGIN_COOKIE, path="/ui/login")
    return response


@router.post("/ui/logout")
async def logout(request: Request) -> Response:
    await posted(request)
    token = request.cookies.get(COOKIE)
    if token:
        await store(request).end(token)
    response = see_other("/ui/login")
    response.delete_cookie(COOKIE, path="/ui")
    return response
