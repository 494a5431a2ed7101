"""Signing in to the web UI through a configured OIDC issuer: the authorization code flow
with PKCE (S256), for each ``[[auth.jwt_issuers]]`` entry that has a ``ui_client_id``.

``/ui/login/oidc/{n}`` sends the browser to the issuer's authorization endpoint (found by
discovery) with a fresh ``state``, ``nonce`` and code challenge; the flow's secrets wait in
a short-lived HttpOnly cookie (SameSite=Lax: it must come back on the issuer's redirect,
a cross-site navigation). The callback checks ``state``, exchanges the code with the
verifier, and checks the id token with the very verifier the API uses for bearer JWTs
(signature, issuer, audience, expiry; tenant and role from its claims) plus the nonce. The
session cookie is then set on a page that moves on by itself: a SameSite=Strict cookie is
not sent on the rest of a redirect chain that started on another site.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from typing import Any

import httpx
import jwt
from fastapi import APIRouter, Request
from fastapi.responses import Response

from roost.config import JwtIssuerSettings
from roost.errors import Forbidden, NotFound, Unauthorized
from roost.security.jwt import JwtVerifier
from roost.server.ui.render import page
from roost.server.ui.session import safe_next, see_other, set_cookie, store

router = APIRouter()
FLOW_COOKIE = "roost_ui_oidc"
FLOW_PATH = "/ui/login/oidc"
FLOW_TTL_S = 600
TIMEOUT_S = 10.0


def ui_issuers(request: Request) -> list[tuple[int, JwtIssuerSettings]]:
    """The issuers people may sign in with, by their index in the configuration."""
    issuers = request.app.state.platform.settings.auth.jwt_issuers
    return [(n, i) for n, i in enumerate(issuers) if i.ui_client_id is not None]


def _issuer(request: Request, n: int) -> JwtIssuerSettings:
    for index, issuer in ui_issuers(request):
        if index == n:
            return issuer
    raise NotFound("no such sign-in issuer")


def _challenge(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _redirect_uri(request: Request, n: int) -> str:
    return str(request.url_for("oidc_callback", n=str(n)))


async def _discover(issuer: JwtIssuerSettings) -> dict[str, Any]:
    url = issuer.issuer.rstrip("/") + "/.well-known/openid-configuration"
    try:
        async with httpx.AsyncClient(timeout=TIMEOUT_S) as client:
            answer = await client.get(url)
            answer.raise_for_status()
            document: dict[str, Any] = answer.json()
    except (httpx.HTTPError, ValueError) as exc:
        detail = type(exc).__name__
        raise Unauthorized(f"the sign-in issuer could not be reached ({detail})") from exc
    for field in ("authorization_endpoint", "token_endpoint"):
        if not isinstance(document.get(field), str):
            raise Unauthorized(f"the sign-in issuer's discovery document has no {field}")
    if document.get("issuer") != issuer.issuer:
        raise Unauthorized("the sign-in issuer's discovery document names another issuer")
    return document


@router.get("/ui/login/oidc/{n}")
async def start(n: int, request: Request, next: str | None = None) -> Response:
    issuer = _issuer(request, n)
    discovery = await _discover(issuer)
    flow: dict[str, Any] = {
        "n": n, "state": secrets.token_urlsafe(24), "nonce": secrets.token_urlsafe(24),
        "verifier": secrets.token_urlsafe(48), "next": safe_next(next),
    }  # fmt: skip
    query = httpx.QueryParams({
        "response_type": "code", "client_id": issuer.ui_client_id or "",
        "redirect_uri": _redirect_uri(request, n), "scope": "openid profile",
        "state": flow["state"], "nonce": flow["nonce"],
        "code_challenge": _challenge(flow["verifier"]), "code_challenge_method": "S256",
    })  # fmt: skip
    response = see_other(f"{discovery['authorization_endpoint']}?{query}")
    response.set_cookie(
        FLOW_COOKIE, base64.urlsafe_b64encode(json.dumps(flow).encode()).decode(),
        max_age=FLOW_TTL_S, path=FLOW_PATH, httponly=True, samesite="lax",
        secure=request.url.scheme == "https",
    )  # fmt: skip
    return response


def _flow(request: Request, n: int, state: str) -> dict[str, Any]:
    raw = request.cookies.get(FLOW_COOKIE, "")
    try:
        flow: dict[str, Any] = json.loads(base64.urlsafe_b64decode(raw.encode()))
    except (ValueError, TypeError):
        flow = {}
    sent = str(flow.get("state", ""))
    if not sent or flow.get("n") != n or not hmac.compare_digest(sent, state):
        raise Forbidden("this sign-in was not started here, or took too long; start again")
    return flow


@router.get("/ui/login/oidc/{n}/callback", name="oidc_callback")
async def callback(
    n: int,
    request: Request,
    code: str | None = None,
    state: str = "",
    error: str | None = None,
) -> Response:
    issuer = _issuer(request, n)
    flow = _flow(request, n, state)
    if error is not None or not code:
        raise Unauthorized(f"the issuer did not sign you in ({(error or 'no code')[:100]})")
    discovery = await _discover(issuer)
    form = {
        "grant_type": "authorization_code", "code": code, "client_id": issuer.ui_client_id,
        "redirect_uri": _redirect_uri(request, n), "code_verifier": flow["verifier"],
    }  # fmt: skip
    if issuer.ui_client_secret is not None:
        form["client_secret"] = issuer.ui_client_secret.get_secret_value()
    try:
        async with httpx.AsyncClient(timeout=TIMEOUT_S) as client:
            answer = await client.post(discovery["token_endpoint"], data=form)
        tokens = answer.json() if answer.is_success else {}
    except (httpx.HTTPError, ValueError) as exc:
        detail = type(exc).__name__
        raise Unauthorized(f"the issuer's token endpoint failed ({detail})") from exc
    id_token = tokens.get("id_token")
    if not isinstance(id_token, str):
        raise Unauthorized("the issuer gave no id token for this code")
    verifier: JwtVerifier = request.app.state.jwt
    principal = await verifier.verify(id_token)  # signature, iss, aud, exp; tenant, role
    claims = jwt.decode(id_token, options={"verify_signature": False})  # verified just above
    nonce = str(claims.get("nonce", ""))
    if not nonce or not hmac.compare_digest(nonce, str(flow["nonce"])):
        raise Unauthorized("the id token was not issued for this sign-in (nonce)")
    sessions = store(request)
    token, _ = await sessions.create(principal)
    after = safe_next(str(flow.get("next", "")))
    response = page(request, "signed_in.html", title="Signed in", after=after)
    set_cookie(request, response, token, sessions.ttl_ms // 1000)
    response.delete_cookie(FLOW_COOKIE, path=FLOW_PATH)
    return response
