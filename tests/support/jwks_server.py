"""A JWKS document served on loopback by the test itself, counting fetches per path,
plus the signing keys and a token maker for tests of JWT authentication."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from tests.support.servers import free_port


class SigningKey:
    def __init__(self, kid: str, kind: str = "RSA") -> None:
        self.kid = kid
        self.private: Any = (
            rsa.generate_private_key(public_exponent=65537, key_size=2048)
            if kind == "RSA"
            else ec.generate_private_key(ec.SECP256R1())
        )
        self.alg = "RS256" if kind == "RSA" else "ES256"
        algorithm: Any = RSAAlgorithm if kind == "RSA" else ECAlgorithm
        self.jwk: dict[str, Any] = algorithm.to_jwk(self.private.public_key(), as_dict=True)
        self.jwk |= {"kid": kid, "use": "sig"}

    def sign(self, claims: dict[str, Any], **header: Any) -> str:
        return jwt.encode(
            claims, self.private, algorithm=self.alg, headers={"kid": self.kid, **header}
        )


def claims(issuer: str, **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {"iss": issuer, "sub": "alice", "aud": "roost", "exp": now + 300, "iat": now,
            "tenant": "acme", "roost_role": "member"}  # fmt: skip
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


class JwksServer:
    """Serves ``{"keys": [...]}`` at any path on 127.0.0.1; ``fetches`` counts per path."""

    def __init__(self) -> None:
        self.keys: list[dict[str, Any]] = []
        self.fetches: Counter[str] = Counter()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.fetches[self.path] += 1
                body = json.dumps({"keys": outer.keys}).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.port = free_port()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def __enter__(self) -> JwksServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)
