"""API keys: created once, shown once, stored only as a salted HMAC-SHA256.

Keys made by Roost look like ``roost-<key id>-<secret>``; the id part finds the row and
the secret is checked in constant time. Keys supplied from outside (``ROOST_API_KEY``)
may be any string of 16+ characters: their id is derived from a hash of the whole key.
Keys carry 256 bits of randomness, so a fast keyed hash is as strong as a slow one here
and keeps every request cheap.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from roost.errors import Conflict, InvalidRequest, NotFound, Unauthorized
from roost.security.key_cache import VerifiedCache
from roost.security.principal import ROLE_NAMES, Role
from roost.storage import Database, Row, now_ms

KEY_PREFIX = "roost"
# Writing last_used_at on every request would make every read a write; once a minute is enough.
_LAST_USED_RESOLUTION_MS = 60_000


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: str
    tenant_id: str
    name: str
    created_at: int
    expires_at: int | None
    revoked_at: int | None
    last_used_at: int | None
    role: Role = Role.OWNER
    operator: bool = False

    @classmethod
    def from_row(cls, row: Row) -> ApiKey:
        return cls(
            row["id"],
            row["tenant_id"],
            row["name"],
            int(row["created_at"]),
            row["expires_at"],
            row["revoked_at"],
            row["last_used_at"],
            Role(row["role"]),
            bool(row["operator"]),
        )

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now_ms())


def parse_role(value: str) -> Role:
    """The role named ``value``; 400 naming the allowed roles otherwise."""
    try:
        return Role(value)
    except ValueError:
        raise InvalidRequest(
            f"unknown role {value[:40]!r}: use one of {', '.join(ROLE_NAMES)}",
            param="role",
            allowed=list(ROLE_NAMES),
        ) from None


def split_key(presented: str) -> tuple[str, str]:
    """The (key id, secret) of a presented key, whichever form it has."""
    parts = presented.split("-", 2)
    if len(parts) == 3 and parts[0] == KEY_PREFIX and len(parts[1]) == 12 and parts[2]:
        return parts[1], parts[2]
    return "ext" + hashlib.sha256(presented.encode()).hexdigest()[:16], presented


def _new_plaintext(key_id: str) -> str:
    return f"{KEY_PREFIX}-{key_id}-{secrets.token_urlsafe(32)}"


def _digest(salt: str, secret: str) -> str:
    return hmac.new(bytes.fromhex(salt), secret.encode(), hashlib.sha256).hexdigest()


class ApiKeyStore:
    def __init__(self, database: Database, cache: VerifiedCache[ApiKey] | None = None) -> None:
        self.database = database
        # Keys verified recently (key_cache.py); None reads the database on every request.
        self.cache = cache
        self._last_used_written: dict[str, int] = {}

    async def create(
        self,
        tenant_id: str,
        name: str,
        *,
        expires_at: int | None = None,
        role: Role = Role.OWNER,
        operator: bool = False,
    ) -> tuple[ApiKey, str]:
        """A new key for ``tenant_id``: the stored record and the plaintext, shown only now."""
        key_id = secrets.token_hex(6)
        plaintext = _new_plaintext(key_id)
        key = await self._insert(key_id, tenant_id, name, plaintext, expires_at, role, operator)
        return key, plaintext

    async def seed(
        self, tenant_id: str, name: str, plaintext: str, *, operator: bool = False
    ) -> tuple[ApiKey, bool]:
        """Store a key chosen outside Roost (idempotent); the flag says whether it was new.

        An existing seeded key is brought to ``operator`` when asked (the bootstrap key is
        always the operator, whatever an older version stored)."""
        key_id, _ = split_key(plaintext)
        row = await self.database.fetch_one("SELECT * FROM api_keys WHERE id = :id", {"id": key_id})
        if row is not None:
            if operator and not row["operator"]:
                await self.database.execute(
                    "UPDATE api_keys SET operator = 1 WHERE id = :id", {"id": key_id}
                )
                self._changed()
                return await self.get(key_id), False
            return ApiKey.from_row(row), False
        try:
            key = await self._insert(key_id, tenant_id, name, plaintext, None, Role.OWNER, operator)
        except Conflict:  # another process seeded it between our look and our insert
            return await self.seed(tenant_id, name, plaintext, operator=operator)
        return key, True

    async def get(self, key_id: str, tenant_id: str | None = None) -> ApiKey:
        """The key ``key_id`` (within ``tenant_id`` when given); 404 otherwise."""
        row = await self.database.fetch_one("SELECT * FROM api_keys WHERE id = :id", {"id": key_id})
        if row is None or (tenant_id is not None and row["tenant_id"] != tenant_id):
            raise NotFound(f"API key {key_id[:40]!r} not found", param="key_id")
        return ApiKey.from_row(row)

    async def verify(self, presented: str) -> ApiKey:
        """The active key matching ``presented``; :class:`Unauthorized` otherwise.

        Served from the cache of verified keys while no key or tenant changed anywhere in
        the deployment (see ``key_cache``); else one query reads the key and whether its
        tenant is disabled, so a revoked key or a disabled tenant's keys stop at once."""
        cache = self.cache
        epoch = cache.epoch() if cache is not None else None
        if cache is not None and epoch is not None:
            cached = cache.get(presented, epoch)
            if cached is not None:
                await self._touch(cached.id)
                return cached
        key = await self._verify_in_database(presented)
        if cache is not None and epoch is not None:
            cache.put(presented, key, epoch, valid_until_ms=key.expires_at)
        await self._touch(key.id)
        return key

    async def _verify_in_database(self, presented: str) -> ApiKey:
        key_id, secret = split_key(presented)
        row = await self.database.fetch_one(
            "SELECT k.*, t.disabled_at AS tenant_disabled_at FROM api_keys k"
            " JOIN tenants t ON t.id = k.tenant_id WHERE k.id = :id",
            {"id": key_id},
        )
        if row is None or not hmac.compare_digest(_digest(row["salt"], secret), row["secret_hash"]):
            raise Unauthorized("invalid API key")
        key = ApiKey.from_row(row)
        if key.revoked_at is not None:
            raise Unauthorized("API key has been revoked")
        if not key.is_active:
            raise Unauthorized("API key has expired")
        if row["tenant_disabled_at"] is not None:
            raise Unauthorized("the key's tenant is disabled")
        return key

    async def set_role(self, key_id: str, role: Role, tenant_id: str | None = None) -> ApiKey:
        await self.get(key_id, tenant_id)
        await self.database.execute(
            "UPDATE api_keys SET role = :r WHERE id = :id", {"r": role.value, "id": key_id}
        )
        self._changed()
        return await self.get(key_id)

    async def rotate(self, key_id: str, tenant_id: str | None = None) -> tuple[ApiKey, str]:
        """A new secret for an active key, same id, role and name; the old secret stops
        working at once. Returns the plaintext, shown only now."""
        key = await self.get(key_id, tenant_id)
        if not key.is_active:
            raise InvalidRequest(f"API key {key_id!r} is revoked or expired", param="key_id")
        if key_id.startswith("ext"):
            raise InvalidRequest(
                "a key chosen outside Roost (ROOST_API_KEY) is rotated by changing it there",
                param="key_id",
            )
        plaintext = _new_plaintext(key_id)
        salt = secrets.token_hex(16)
        _, secret = split_key(plaintext)
        await self.database.execute(
            "UPDATE api_keys SET salt = :salt, secret_hash = :hash WHERE id = :id",
            {"salt": salt, "hash": _digest(salt, secret), "id": key_id},
        )
        self._changed()
        return key, plaintext

    async def list(self, tenant_id: str | None = None) -> list[ApiKey]:
        if tenant_id is None:
            rows = await self.database.fetch_all("SELECT * FROM api_keys ORDER BY created_at, id")
        else:
            rows = await self.database.fetch_all(
                "SELECT * FROM api_keys WHERE tenant_id = :t ORDER BY created_at, id",
                {"t": tenant_id},
            )
        return [ApiKey.from_row(row) for row in rows]

    async def revoke(self, key_id: str, tenant_id: str | None = None) -> ApiKey:
        """Revoke a key by id (within ``tenant_id`` when given); revoking twice is harmless."""
        params: dict[str, object] = {"id": key_id, "at": now_ms()}
        scope = ""
        if tenant_id is not None:
            scope = " AND tenant_id = :t"
            params["t"] = tenant_id
        await self.database.execute(
            f"UPDATE api_keys SET revoked_at = :at WHERE id = :id AND revoked_at IS NULL{scope}",
            params,
        )
        self._changed()
        row = await self.database.fetch_one(
            f"SELECT * FROM api_keys WHERE id = :id{scope}",
            {k: v for k, v in params.items() if k != "at"},
        )
        if row is None:
            raise NotFound(f"API key {key_id!r} not found", param="key_id")
        return ApiKey.from_row(row)

    async def _insert(
        self,
        key_id: str,
        tenant_id: str,
        name: str,
        plaintext: str,
        expires_at: int | None,
        role: Role,
        operator: bool,
    ) -> ApiKey:
        _, secret = split_key(plaintext)
        salt = secrets.token_hex(16)
        key = ApiKey(key_id, tenant_id, name, now_ms(), expires_at, None, None, role, operator)
        inserted = await self.database.execute(
            "INSERT INTO api_keys (id, tenant_id, name, salt, secret_hash, created_at,"
            " expires_at, role, operator)"
            " VALUES (:id, :t, :name, :salt, :hash, :at, :exp, :role, :op)"
            " ON CONFLICT (id) DO NOTHING",
            {
                "id": key.id,
                "t": tenant_id,
                "name": name,
                "salt": salt,
                "hash": _digest(salt, secret),
                "at": key.created_at,
                "exp": expires_at,
                "role": role.value,
                "op": 1 if operator else 0,
            },
        )
        if not inserted:
            raise Conflict(f"API key {key_id[:40]!r} already exists", param="key_id")
        return key

    def _changed(self) -> None:
        # The database's triggers tell every process (auth_changes.py); this process need
        # not wait for its own signal.
        if self.cache is not None:
            self.cache.feed.changed_here()

    async def _touch(self, key_id: str) -> None:
        at = now_ms()
        if at - self._last_used_written.get(key_id, 0) < _LAST_USED_RESOLUTION_MS:
            return
        self._last_used_written[key_id] = at
        await self.database.execute(
            "UPDATE api_keys SET last_used_at = :at WHERE id = :id", {"at": at, "id": key_id}
        )
