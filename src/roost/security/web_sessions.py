"""Server-side sessions of the web UI: a browser signs in once with an API key and then
carries only a random session token in a cookie.

The table keeps a hash of the token (a copied database holds no usable cookie), the
principal the key resolved to at sign-in, the session's CSRF token and its expiry. A
session dies with its key: revoking or expiring the key ends every session made with it.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from roost.security.principal import Principal, Role
from roost.storage import Database, Migration, migrate, now_ms

WEB_SESSION_MIGRATIONS = [
    Migration(
        component="web_sessions",
        version=1,
        name="web UI sessions",
        common=[
            """CREATE TABLE web_sessions (
                token_hash TEXT PRIMARY KEY,
                tenant_id TEXT NOT NULL REFERENCES tenants(id),
                key_id TEXT,
                role TEXT NOT NULL,
                operator INTEGER NOT NULL,
                subject TEXT,
                csrf TEXT NOT NULL,
                created_at BIGINT NOT NULL,
                expires_at BIGINT NOT NULL
            )""",
            "CREATE INDEX web_sessions_by_expiry ON web_sessions (expires_at)",
        ],
    )
]


@dataclass(frozen=True, slots=True)
class WebSession:
    principal: Principal
    csrf: str
    expires_at: int


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class WebSessionStore:
    def __init__(self, database: Database, ttl_ms: int) -> None:
        self.database = database
        self.ttl_ms = ttl_ms

    @classmethod
    async def open(cls, database: Database, ttl_s: float) -> WebSessionStore:
        await migrate(database, WEB_SESSION_MIGRATIONS)
        return cls(database, int(ttl_s * 1000))

    async def create(self, principal: Principal) -> tuple[str, WebSession]:
        """A new session for ``principal``: the cookie token (shown only now) and the session."""
        token = secrets.token_urlsafe(32)
        now = now_ms()
        session = WebSession(principal, secrets.token_urlsafe(32), now + self.ttl_ms)
        # Expired sessions go when new ones come: the table stays as small as its live set.
        await self.database.execute("DELETE FROM web_sessions WHERE expires_at <= :n", {"n": now})
        await self.database.execute(
            "INSERT INTO web_sessions (token_hash, tenant_id, key_id, role, operator, subject,"
            " csrf, created_at, expires_at) VALUES (:h, :t, :k, :r, :o, :s, :c, :at, :e)",
            {
                "h": _hash(token),
                "t": principal.tenant_id,
                "k": principal.key_id,
                "r": principal.role.value,
                "o": int(principal.operator),
                "s": principal.subject,
                "c": session.csrf,
                "at": now,
                "e": session.expires_at,
            },
        )
        return token, session

    async def get(self, token: str) -> WebSession | None:
        """The live session of ``token``; None when unknown, expired, or its key is no longer
        active (revoked or expired since sign-in)."""
        row = await self.database.fetch_one(
            "SELECT s.*, k.revoked_at AS key_revoked_at, k.expires_at AS key_expires_at"
            " FROM web_sessions s LEFT JOIN api_keys k ON k.id = s.key_id"
            " WHERE s.token_hash = :h",
            {"h": _hash(token)},
        )
        now = now_ms()
        if row is None or int(row["expires_at"]) <= now:
            return None
        if row["key_id"] is not None and (
            row["key_revoked_at"] is not None
            or (row["key_expires_at"] is not None and int(row["key_expires_at"]) <= now)
        ):
            return None
        principal = Principal(
            str(row["tenant_id"]),
            row["key_id"],
            Role(row["role"]),
            bool(row["operator"]),
            row["subject"],
        )
        return WebSession(principal, str(row["csrf"]), int(row["expires_at"]))

    async def end(self, token: str) -> None:
        await self.database.execute(
            "DELETE FROM web_sessions WHERE token_hash = :h", {"h": _hash(token)}
        )

    async def expire_now(self, token: str) -> None:
        """Make a session expired without deleting it (what time does; tests use it)."""
        await self.database.execute(
            "UPDATE web_sessions SET expires_at = :n WHERE token_hash = :h",
            {"n": now_ms(), "h": _hash(token)},
        )
