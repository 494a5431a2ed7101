"""Signing in to the web UI through the configured OIDC issuer (authorization code flow
with PKCE) against a provider the test serves on loopback: the session carries the
tenant and role of the id token's claims; a forged state, a replayed code and an id token
issued for another sign-in (nonce) are refused."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from playwright.sync_api import Browser, expect

from roost.config import load_settings
from roost.server.app import create_app
from tests.support.oidc_provider import OidcProvider
from tests.support.uvicorn_thread import ThreadedServer
from tests.ui.conftest import BOOTSTRAP_KEY

CLIENT_ID = "roost-ui"


@dataclass
class Setup:
    url: str
    idp: OidcProvider


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    with OidcProvider(CLIENT_ID, tenant="acme", roost_role="viewer") as idp:
        issuers = [{"issuer": idp.issuer, "jwks_url": f"{idp.issuer}/jwks",
                    "audience": [CLIENT_ID], "ui_client_id": CLIENT_ID,
                    "ui_label": "Company SSO"}]  # fmt: skip
        settings = load_settings(
            env={"ROOST_HOME": str(tmp_path_factory.mktemp("h-ui2-oidc")),
                 "ROOST_API_KEY": BOOTSTRAP_KEY, "ROOST_ENGINE__ENABLED": "false",
                 "ROOST_MEMORY__EMBEDDER": "hashing",
                 "ROOST_AUTH__JWT_ISSUERS": json.dumps(issuers)}
        )  # fmt: skip
        server = ThreadedServer(create_app(settings)).start()
        try:
            headers = {"Authorization": f"Bearer {BOOTSTRAP_KEY}"}
            made = httpx.post(f"{server.url}/admin/tenants", json={"name": "acme"},
                              headers=headers)  # fmt: skip
            assert made.status_code == 201, made.text
            yield Setup(server.url, idp)
        finally:
            server.stop()


def _to_issuer(client: httpx.Client, next_page: str = "/ui/approvals") -> str:
    """Follow the sign-in link to the issuer; returns its redirect back to Roost."""
    login = client.get("/ui/login")
    link = re.search(r'href="(/ui/login/oidc/0\?next=[^"]*)"[^>]*>Company SSO<', login.text)
    assert link, "no sign-in link for the issuer"
    started = client.get(f"/ui/login/oidc/0?next={next_page}")
    assert started.status_code == 303
    authorize = started.headers["location"]
    assert "code_challenge_method=S256" in authorize and "code_challenge=" in authorize
    back = httpx.get(authorize)  # the provider signs alice in at once
    assert back.status_code == 302
    return str(back.headers["location"])


def test_sign_in_through_the_issuer_with_pkce(setup: Setup) -> None:
    with httpx.Client(base_url=setup.url) as client:
        callback = _to_issuer(client)
        done = client.get(callback)
        assert done.status_code == 200, done.text
        assert 'content="0; url=/ui/approvals"' in done.text
        cookie = next(h for h in done.headers.get_list("set-cookie") if h.startswith("roost_ui="))
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie
        inbox = client.get("/ui/approvals")
        assert inbox.status_code == 200
        assert "viewer" in inbox.text  # the role from the id token's claims
        assert "can see approvals but not decide them" in inbox.text
        # The flow is spent: its cookie is gone, so the same callback is refused.
        assert client.get(callback).status_code == 403
    assert setup.idp.token_errors == []  # the one exchange carried a matching verifier


def test_a_forged_state_or_a_replayed_code_is_refused(setup: Setup) -> None:
    with httpx.Client(base_url=setup.url) as client:
        callback = _to_issuer(client)
        forged = client.get(re.sub(r"state=[^&]+", "state=forged", callback))
        assert forged.status_code == 403 and "start again" in forged.text
        assert "roost_ui=" not in "".join(forged.headers.get_list("set-cookie"))
    with httpx.Client(base_url=setup.url) as stranger:  # no flow cookie: not started here
        assert stranger.get(callback).status_code == 403
    with httpx.Client(base_url=setup.url) as client:
        callback = _to_issuer(client)
        flow = client.cookies["roost_ui_oidc"]
        assert client.get(callback).status_code == 200
        # Replayed with its flow cookie put back: the provider refuses the spent code.
        client.cookies.set("roost_ui_oidc", flow, path="/ui/login/oidc")
        replayed = client.get(callback)
        assert replayed.status_code == 401 and "no id token" in replayed.text
    assert setup.idp.token_errors == ["invalid_grant"]


def test_an_id_token_for_another_sign_in_is_refused(setup: Setup) -> None:
    setup.idp.nonce_override = "someone-elses-nonce"
    try:
        with httpx.Client(base_url=setup.url) as client:
            answer = client.get(_to_issuer(client))
            assert answer.status_code == 401 and "nonce" in answer.text
            assert client.get("/ui/runs").status_code == 303  # not signed in
    finally:
        setup.idp.nonce_override = None


def test_sign_in_through_the_issuer_in_a_browser(setup: Setup, chromium: Browser) -> None:
    """The session cookie is SameSite=Strict and set at the end of a redirect chain that
    started on the issuer's site: the page must still arrive signed in."""
    context = chromium.new_context(base_url=setup.url)
    errors: list[str] = []
    page = context.new_page()
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    try:
        page.goto("/ui/approvals")
        page.get_by_role("link", name="Company SSO").click()
        expect(page).to_have_url(re.compile(r"/ui/approvals$"))
        expect(page.locator("header .who")).to_contain_text("viewer")
        expect(page.get_by_role("note")).to_contain_text("can see approvals but not decide")
    finally:
        context.close()
    assert errors == []
