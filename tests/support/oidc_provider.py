"""A minimal OIDC provider on loopback for sign-in tests: discovery, an authorization
endpoint that signs "alice" in at once (redirecting back with a one-time code), a token
endpoint that checks the PKCE verifier (S256) before handing out an id token, and JWKS."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from tests.support.jwks_server import SigningKey, claims
from tests.support.servers import free_port


class OidcProvider:
    def __init__(self, client_id: str, **id_claims: Any) -> None:
        self.client_id = client_id
        self.id_claims = id_claims  # added to (or overriding) each id token's claims
        self.key = SigningKey("oidc-1")
        self.port = free_port()
        self.issuer = f"http://127.0.0.1:{self.port}"
        self.codes: dict[str, dict[str, str]] = {}  # code -> what /authorize was asked
        self.token_errors: list[str] = []
        self.nonce_override: str | None = None
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urlsplit(self.path)
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                if url.path == "/.well-known/openid-configuration":
                    self._json(200, {
                        "issuer": outer.issuer, "jwks_uri": f"{outer.issuer}/jwks",
                        "authorization_endpoint": f"{outer.issuer}/authorize",
                        "token_endpoint": f"{outer.issuer}/token",
                        "code_challenge_methods_supported": ["S256"],
                    })  # fmt: skip
                elif url.path == "/jwks":
                    self._json(200, {"keys": [outer.key.jwk]})
                elif url.path == "/authorize":
                    code = secrets.token_urlsafe(16)
                    outer.codes[code] = query
                    back = {"code": code, "state": query.get("state", "")}
                    self.send_response(302)
                    self.send_header("location", f"{query['redirect_uri']}?{urlencode(back)}")
                    self.end_headers()
                else:
                    self._json(404, {"error": "not_found"})

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                asked = outer.codes.pop(form.get("code", ""), None)  # a code works once
                error = outer._refusal(form, asked)
                if error is not None:
                    outer.token_errors.append(error)
                    self._json(400, {"error": error})
                    return
                assert asked is not None
                nonce = outer.nonce_override or asked.get("nonce")
                token = outer.key.sign(
                    claims(outer.issuer, aud=outer.client_id, nonce=nonce, **outer.id_claims)
                )
                self._json(200, {"id_token": token, "token_type": "Bearer"})

            def _json(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def _refusal(self, form: dict[str, str], asked: dict[str, str] | None) -> str | None:
        if asked is None:
            return "invalid_grant"  # unknown or already used code
        if form.get("client_id") != self.client_id or asked.get("client_id") != self.client_id:
            return "invalid_client"
        if form.get("redirect_uri") != asked.get("redirect_uri"):
            return "invalid_grant"
        if asked.get("code_challenge_method") != "S256":
            return "invalid_request"
        digest = hashlib.sha256(form.get("code_verifier", "").encode()).digest()
        if base64.urlsafe_b64encode(digest).rstrip(b"=").decode() != asked.get("code_challenge"):
            return "invalid_grant"  # the verifier does not match the challenge
        return None

    def __enter__(self) -> OidcProvider:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)
