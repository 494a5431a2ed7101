"""Bearer JWTs against a JWKS served by the test on loopback: good tokens map to tenant and
role, and every listed attack is refused with 401 problem+json naming its reason class."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from tests.server.conftest import AppFactory
from tests.support.jwks_server import JwksServer, SigningKey, claims

ISSUER = "https://idp.example.test"
CAPPED = "https://capped.example.test"  # refreshes on unknown kid at most once an hour
STATIC = "https://static.example.test"  # static keys, ES256, role mapping from groups


@pytest.fixture(scope="module")
def signing() -> dict[str, SigningKey]:
    return {"rsa": SigningKey("rsa-1"), "other": SigningKey("rsa-1"),
            "rotated": SigningKey("rsa-2"), "ec": SigningKey("ec-1", "EC")}  # fmt: skip


@pytest.fixture
def jwks(signing: dict[str, SigningKey]) -> Iterator[JwksServer]:
    with JwksServer() as server:
        server.keys = [signing["rsa"].jwk]
        yield server


@pytest.fixture
async def api(
    make_app: AppFactory, jwks: JwksServer, signing: dict[str, SigningKey], auth: dict[str, str]
) -> AsyncIterator[httpx.AsyncClient]:
    issuers = [
        {"issuer": ISSUER, "jwks_url": jwks.url("/main"), "audience": ["roost"],
         "jwks_min_refresh_s": 0, "role_map": {"admins": "operator"}},
        {"issuer": CAPPED, "jwks_url": jwks.url("/capped"), "audience": ["roost"],
         "jwks_min_refresh_s": 3600, "jwks_cache_s": 3600},
        {"issuer": STATIC, "keys": [signing["ec"].jwk], "audience": ["roost", "other"],
         "algorithms": ["ES256", "RS256"], "tenant": "acme", "role_claim": "groups",
         "role_map": {"readers": "viewer", "writers": "member"}, "leeway_s": 5},
    ]  # fmt: skip
    async with make_app({"ROOST_AUTH__JWT_ISSUERS": json.dumps(issuers)}) as (_, client):
        await client.post("/admin/tenants", json={"name": "acme"}, headers=auth)
        yield client


async def call(client: httpx.AsyncClient, token: str, method: str = "GET",
               path: str = "/admin/whoami") -> httpx.Response:  # fmt: skip
    return await client.request(method, path, headers={"Authorization": f"Bearer {token}"},
                                json={} if method == "POST" else None)  # fmt: skip


def refused(response: httpx.Response, reason: str, token: str) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["reason"] == reason, body
    signature = token.split(".")[2]
    assert token not in response.text and (not signature or signature not in response.text)


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


async def test_valid_tokens_map_claims_to_tenant_and_role(
    api: httpx.AsyncClient, signing: dict[str, SigningKey]
) -> None:
    member = signing["rsa"].sign(claims(ISSUER))
    me = (await call(api, member)).json()
    assert me["role"] == "member" and me["operator"] is False and me["subject"] == "alice"
    assert (await call(api, member, "POST", "/v1/threads")).status_code == 201
    viewer = signing["ec"].sign(claims(STATIC, groups=["readers"], tenant=None))
    assert (await call(api, viewer)).json()["role"] == "viewer"
    assert (await call(api, viewer, "POST", "/v1/threads")).status_code == 403
    both = signing["ec"].sign(claims(STATIC, groups=["readers", "writers"], aud="other"))
    assert (await call(api, both)).json()["role"] == "member"
    operator = signing["rsa"].sign(claims(ISSUER, roost_role="admins", tenant="default"))
    assert (await call(api, operator, path="/admin/models")).status_code == 200


async def test_listed_attacks_are_refused_with_their_reason(
    api: httpx.AsyncClient, signing: dict[str, SigningKey]
) -> None:
    rsa = signing["rsa"]
    now = int(time.time())
    unsigned = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims(ISSUER))}."
    refused(await call(api, unsigned), "alg_none", unsigned)
    # HS/RS confusion: HMAC "signed" with the RSA public key the server trusts.
    public_pem = rsa.private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    confused = _hs256(claims(ISSUER), public_pem, kid=rsa.kid)
    refused(await call(api, confused), "algorithm_not_allowed", confused)
    # An issuer allowing ES256 and RS256: an RS256 token naming its EC key by kid.
    wrong_family = signing["rsa"].sign(claims(STATIC, groups=["writers"]), kid="ec-1")
    refused(await call(api, wrong_family), "key_confusion", wrong_family)
    for kid in ("../../../dev/null", "' OR '1'='1", "http://127.0.0.1:9/jwks", "a" * 300):
        injected = rsa.sign(claims(ISSUER), kid=kid)
        refused(await call(api, injected), "bad_kid", injected)
    expired = rsa.sign(claims(ISSUER, exp=now - 120, iat=now - 600))
    refused(await call(api, expired), "expired", expired)
    early = rsa.sign(claims(ISSUER, nbf=now + 600))
    refused(await call(api, early), "not_yet_valid", early)
    elsewhere = rsa.sign(claims(ISSUER, aud="another-service"))
    refused(await call(api, elsewhere), "wrong_audience", elsewhere)
    stranger = rsa.sign(claims("https://evil.example.test"))
    refused(await call(api, stranger), "unknown_issuer", stranger)
    forged = signing["other"].sign(claims(ISSUER))  # same kid, another private key
    refused(await call(api, forged), "bad_signature", forged)
    nobody = rsa.sign(claims(ISSUER, tenant="no-such-tenant"))
    refused(await call(api, nobody), "unknown_tenant", nobody)
    strange_role = rsa.sign(claims(ISSUER, roost_role="root"))
    refused(await call(api, strange_role), "unknown_role", strange_role)
    no_exp = rsa.sign(claims(ISSUER, exp=None))
    refused(await call(api, no_exp), "missing_claim", no_exp)
    garbage = "eyJhbGciOiJSUzI1NiJ9.bm90IGpzb24.c2ln"
    refused(await call(api, garbage), "malformed", garbage)


async def test_leeway_admits_small_clock_skew(
    api: httpx.AsyncClient, signing: dict[str, SigningKey]
) -> None:
    now = int(time.time())
    skewed = signing["ec"].sign(claims(STATIC, groups=["readers"], exp=now - 2))
    assert (await call(api, skewed)).status_code == 200  # 5 s leeway on this issuer
    late = signing["ec"].sign(claims(STATIC, groups=["readers"], exp=now - 30))
    refused(await call(api, late), "expired", late)


async def test_unknown_kid_refreshes_the_jwks_at_most_at_the_capped_rate(
    api: httpx.AsyncClient, jwks: JwksServer, signing: dict[str, SigningKey]
) -> None:
    assert (await call(api, signing["rsa"].sign(claims(ISSUER)))).status_code == 200
    # A rotated key appears in the JWKS: the first token naming it triggers a refresh.
    jwks.keys = [signing["rsa"].jwk, signing["rotated"].jwk]
    assert (await call(api, signing["rotated"].sign(claims(ISSUER)))).status_code == 200
    assert jwks.fetches["/main"] == 2
    # The capped issuer: made-up kids cannot make the server hammer the JWKS.
    assert (await call(api, signing["rsa"].sign(claims(CAPPED)))).status_code == 200
    for n in range(20):
        made_up = signing["rsa"].sign(claims(CAPPED), kid=f"made-up-{n}")
        refused(await call(api, made_up), "unknown_kid", made_up)
    assert jwks.fetches["/capped"] == 1


async def test_unreachable_jwks_fails_closed(
    make_app: AppFactory, signing: dict[str, SigningKey]
) -> None:
    from tests.support.servers import free_port

    issuers = [{"issuer": ISSUER, "jwks_url": f"http://127.0.0.1:{free_port()}/jwks",
                "audience": ["roost"]}]  # fmt: skip
    async with make_app({"ROOST_AUTH__JWT_ISSUERS": json.dumps(issuers)}) as (_, client):
        token = signing["rsa"].sign(claims(ISSUER, tenant="default"))
        refused(await call(client, token), "issuer_keys_unavailable", token)


def _hs256(payload: dict[str, Any], secret: bytes, kid: str) -> str:
    import hashlib
    import hmac

    signing_input = f"{_b64({'alg': 'HS256', 'typ': 'JWT', 'kid': kid})}.{_b64(payload)}"
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{base64.urlsafe_b64encode(signature).rstrip(b'=').decode()}"


def test_unsafe_issuer_configuration_is_refused_at_load() -> None:
    from roost.config import load_settings
    from roost.errors import ConfigError

    for bad in (
        {"issuer": "x", "jwks_url": "http://idp.example.test/jwks", "audience": ["r"]},
        {"issuer": "x", "keys": [{"kty": "oct"}], "audience": ["r"], "algorithms": ["none"]},
        {"issuer": "x", "keys": [{"kty": "oct"}], "audience": ["r"],
         "algorithms": ["HS256", "RS256"]},
        {"issuer": "x", "audience": ["r"]},
    ):  # fmt: skip
        with pytest.raises(ConfigError, match="jwt_issuers"):
            load_settings(env={"ROOST_AUTH__JWT_ISSUERS": json.dumps([bad])})
    assert jwt.__version__  # PyJWT does the cryptography
