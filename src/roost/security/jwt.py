"""Bearer JWTs from configured issuers, verified with PyJWT, mapped to a :class:`Principal`.

Order of checks, each refusal a 401 naming its reason class (never key material):
shape → header (``alg: none`` refused outright) → issuer (only configured ones, read
from the unverified payload just to pick the issuer) → algorithm pinned per issuer
(an RS issuer never accepts HS256: the HS/RS confusion attack) → ``kid`` (a plain
identifier looked up in the issuer's key set, never used as a path or URL) → key type
matches the algorithm family → signature, ``exp``, ``nbf``, ``aud``, ``iss`` with the
configured leeway → tenant and role from claims.

JWKS documents are fetched with httpx and cached; a token naming an unknown ``kid``
triggers one refresh at most every ``jwks_min_refresh_s`` (a flood of made-up kids
cannot turn the server into a JWKS hammer).
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt

from roost.config import JwtIssuerSettings
from roost.errors import Unauthorized
from roost.security.auth_changes import Epoch
from roost.security.key_cache import VerifiedCache
from roost.security.principal import Principal, Role
from roost.security.tenants import Tenant

_JWT_SHAPE = re.compile(r"^eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$")
# Plain identifiers only (base64url, thumbprints, dotted names): a kid carrying a path,
# URL or quote is an injection attempt, refused by name even though it is only ever
# used as a dictionary key here.
_KID_SHAPE = re.compile(r"^(?!.*\.\.)[A-Za-z0-9._:=-]{1,128}$")
_FAMILY_KTY = {"HS": "oct", "RS": "RSA", "PS": "RSA", "ES": "EC", "Ed": "OKP"}
_TENANT_CACHE_S = 5.0  # a disabled tenant's tokens stop working within this long
_JWKS_TIMEOUT_S = 5.0

TenantLookup = Callable[[str], Awaitable[Tenant | None]]


def looks_like_jwt(token: str) -> bool:
    """JWTs are three base64url parts with a JSON header (``eyJ``); Roost keys never are."""
    return len(token) < 16_384 and _JWT_SHAPE.match(token) is not None


class TokenRefused(Unauthorized):
    """401 with a ``reason`` class a client can act on; the message never holds the token."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"invalid token: {message}", reason=reason)
        self.reason = reason


@dataclass(slots=True)
class _KeySet:
    settings: JwtIssuerSettings
    jwks: dict[str, dict[str, Any]] = field(default_factory=dict)  # kid -> JWK
    fetched_at: float = float("-inf")
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    built: dict[tuple[str, str], jwt.PyJWK] = field(default_factory=dict)

    def static(self) -> dict[str, dict[str, Any]]:
        return {str(k.get("kid", f"static-{i}")): k for i, k in enumerate(self.settings.keys)}

    def known(self) -> dict[str, dict[str, Any]]:
        return {**self.static(), **self.jwks}


class JwtVerifier:
    def __init__(
        self,
        issuers: Sequence[JwtIssuerSettings],
        find_tenant: TenantLookup,
        *,
        http: httpx.AsyncClient | None = None,
        cache: VerifiedCache[Principal] | None = None,
    ) -> None:
        self._issuers = {i.issuer: _KeySet(i) for i in issuers}
        self._find_tenant = find_tenant
        self._http = http
        self._tenants: dict[str, tuple[float, Tenant | None]] = {}
        self._tenants_epoch: Epoch | None = None
        # Tokens verified recently (key_cache.py): a client repeating its token skips the
        # signature check until the token expires, the TTL ends or a tenant changes.
        self._cache = cache

    @property
    def enabled(self) -> bool:
        return bool(self._issuers)

    async def close(self) -> None:
        if self._http is not None:
            await self._http.aclose()

    async def verify(self, token: str) -> Principal:
        cache = self._cache
        epoch = cache.epoch() if cache is not None else None
        if epoch is not None and epoch != self._tenants_epoch:
            self._tenants.clear()  # a tenant may have been disabled since
            self._tenants_epoch = epoch
        if cache is not None and epoch is not None:
            cached = cache.get(token, epoch)
            if cached is not None:
                return cached
        principal, expires_at = await self._verify(token)
        if cache is not None and epoch is not None:
            cache.put(token, principal, epoch, valid_until_ms=expires_at * 1000)
        return principal

    async def _verify(self, token: str) -> tuple[Principal, int]:
        """The principal of a token verified in full, and its ``exp`` (epoch seconds)."""
        header, issuer = self._peek(token)
        keys = self._issuers.get(issuer)
        if keys is None:
            raise TokenRefused("unknown_issuer", "the issuer is not configured on this server")
        settings = keys.settings
        alg = header.get("alg")
        if alg not in settings.algorithms:
            raise TokenRefused(
                "algorithm_not_allowed",
                f"algorithm {str(alg)[:16]!r} is not allowed for this issuer "
                f"(allowed: {', '.join(settings.algorithms)})",
            )
        key = await self._key(keys, header.get("kid"), str(alg))
        claims = self._decode(token, key, str(alg), settings)
        # PyJWT checked ``exp`` is a number; the cache trusts the token no longer than it.
        return await self._principal(claims, settings), int(claims["exp"])

    # -- steps --

    def _peek(self, token: str) -> tuple[dict[str, Any], str]:
        try:
            header = jwt.get_unverified_header(token)
            payload = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise TokenRefused("malformed", "not a well-formed JWT") from None
        alg = header.get("alg")
        if not isinstance(alg, str) or alg.lower() == "none":
            raise TokenRefused("alg_none", "unsigned tokens (alg 'none') are refused")
        issuer = payload.get("iss")
        if not isinstance(issuer, str):
            raise TokenRefused("unknown_issuer", "the token names no issuer")
        return header, issuer

    async def _key(self, keys: _KeySet, kid: Any, alg: str) -> jwt.PyJWK:
        if kid is not None and (not isinstance(kid, str) or not _KID_SHAPE.match(kid)):
            raise TokenRefused("bad_kid", "the 'kid' header is not a plain key identifier")
        await self._ensure_fresh(keys, kid)
        known = keys.known()
        if kid is None:
            if len(known) != 1:
                raise TokenRefused(
                    "unknown_kid", "the token names no 'kid' and the issuer has several keys"
                )
            kid = next(iter(known))
        jwk_data = known.get(kid)
        if jwk_data is None:
            raise TokenRefused("unknown_kid", "no key of the issuer has this 'kid'")
        built = keys.built.get((kid, alg))
        if built is None:
            built = _build_key(jwk_data, alg)
            keys.built[(kid, alg)] = built
        return built

    async def _ensure_fresh(self, keys: _KeySet, kid: Any) -> None:
        settings = keys.settings
        if settings.jwks_url is None:
            return
        now = time.monotonic()
        age = now - keys.fetched_at
        stale = age >= settings.jwks_cache_s
        unknown_kid = kid is not None and kid not in keys.known()
        if not stale and not (unknown_kid and age >= settings.jwks_min_refresh_s):
            return
        async with keys.lock:
            if keys.fetched_at >= now:
                return  # another request refreshed it while this one waited
            try:
                keys.jwks = await self._fetch(settings.jwks_url)
            except (httpx.HTTPError, ValueError):
                if not keys.jwks:  # nothing to fall back on: fail closed
                    raise TokenRefused(
                        "issuer_keys_unavailable", "the issuer's keys could not be fetched"
                    ) from None
            keys.fetched_at = time.monotonic()
            keys.built.clear()

    async def _fetch(self, url: str) -> dict[str, dict[str, Any]]:
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=_JWKS_TIMEOUT_S, follow_redirects=False)
        response = await self._http.get(url)
        response.raise_for_status()
        document = response.json()
        found: dict[str, dict[str, Any]] = {}
        for index, jwk_data in enumerate(document.get("keys", [])):
            if isinstance(jwk_data, dict) and jwk_data.get("use", "sig") == "sig":
                found[str(jwk_data.get("kid", f"jwks-{index}"))] = jwk_data
        return found

    def _decode(
        self, token: str, key: jwt.PyJWK, alg: str, settings: JwtIssuerSettings
    ) -> dict[str, Any]:
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key.key,
                algorithms=[alg],
                audience=settings.audience,
                issuer=settings.issuer,
                leeway=settings.leeway_s,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except jwt.ExpiredSignatureError:
            raise TokenRefused("expired", "the token has expired") from None
        except jwt.ImmatureSignatureError:
            raise TokenRefused("not_yet_valid", "the token is not valid yet (nbf/iat)") from None
        except jwt.InvalidAudienceError:
            raise TokenRefused("wrong_audience", "the token is for another audience") from None
        except jwt.MissingRequiredClaimError as exc:
            raise TokenRefused(
                "missing_claim", f"the token lacks the {exc.claim!r} claim"
            ) from None
        except jwt.InvalidSignatureError:
            raise TokenRefused("bad_signature", "the signature does not verify") from None
        except jwt.PyJWTError:
            raise TokenRefused("invalid_token", "the token failed verification") from None
        return claims

    async def _principal(self, claims: dict[str, Any], settings: JwtIssuerSettings) -> Principal:
        tenant_name = settings.tenant or claims.get(settings.tenant_claim)
        if not isinstance(tenant_name, str) or not tenant_name:
            raise TokenRefused("no_tenant", f"the token has no {settings.tenant_claim!r} claim")
        tenant = await self._tenant(tenant_name)
        if tenant is None or tenant.disabled_at is not None:
            raise TokenRefused("unknown_tenant", "the token's tenant is unknown or disabled")
        role, operator = _role(claims.get(settings.role_claim), settings)
        subject = str(claims["sub"])[:200]
        # A stable pseudo key id: per-key limits and budgets apply to a JWT subject too.
        digest = hashlib.sha256(f"{settings.issuer}\0{subject}".encode()).hexdigest()[:16]
        return Principal(tenant.id, f"jwt{digest}", role, operator, subject)

    async def _tenant(self, name: str) -> Tenant | None:
        now = time.monotonic()
        cached = self._tenants.get(name)
        if cached is not None and now - cached[0] < _TENANT_CACHE_S:
            return cached[1]
        tenant = await self._find_tenant(name)
        if len(self._tenants) > 10_000:
            self._tenants.clear()
        self._tenants[name] = (now, tenant)
        return tenant


def _build_key(jwk_data: dict[str, Any], alg: str) -> jwt.PyJWK:
    expected_kty = _FAMILY_KTY.get(alg[:2])
    declared = jwk_data.get("alg")
    if jwk_data.get("kty") != expected_kty or (declared is not None and declared != alg):
        # e.g. an HS256 token against an RSA public key: the confusion attack.
        raise TokenRefused("key_confusion", "the key named by 'kid' is not for this algorithm")
    try:
        return jwt.PyJWK(jwk_data, algorithm=alg)
    except jwt.PyJWTError:
        raise TokenRefused("unknown_kid", "the issuer's key for this 'kid' is unusable") from None


_ROLE_ORDER = ("viewer", "member", "owner", "operator")


def _role(value: Any, settings: JwtIssuerSettings) -> tuple[Role, bool]:
    """The highest role the claim maps to (a claim may be a list, like groups)."""
    values = value if isinstance(value, list) else [value] if value is not None else []
    mapped = [settings.role_map.get(str(v), str(v)) for v in values]
    known = [m for m in mapped if m in _ROLE_ORDER]
    if not known:
        if settings.default_role is None:
            raise TokenRefused(
                "unknown_role",
                f"the {settings.role_claim!r} claim maps to none of {', '.join(_ROLE_ORDER)}",
            )
        return Role(settings.default_role), False
    best = max(known, key=_ROLE_ORDER.index)
    if best == "operator":
        return Role.OWNER, True
    return Role(best), False
