"""Credentials at rest: named secrets (provider API keys) encrypted with AES-256-GCM.

The key is derived (HKDF-SHA256) from a master secret: ``secrets.master_key`` in the
configuration (``ROOST_SECRETS__MASTER_KEY``; what a deployment should use, from its secret
manager) or, on a laptop, a random key in ``home/master.key`` (0600) made on first use.
Each ciphertext is bound to its tenant and name (GCM associated data), so copying one
row's ciphertext onto another name does not decrypt. Values are never listed or printed:
only :meth:`SecretStore.reveal` returns one, to the code that hands it to an SDK.
"""

from __future__ import annotations

import base64
import os
import re
import secrets as random
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import text

from roost.config import Settings
from roost.errors import InvalidRequest, NotFound, RoostError
from roost.security.audit import AuditLog
from roost.storage import Database, Row, now_ms

SECRET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
REFERENCE_PREFIX = "secret:"
_FORMAT = "v1"  # ciphertext format: v1:<base64(nonce || ciphertext+tag)>
_KDF_INFO = b"roost secrets v1"


class SecretUnavailable(RoostError):
    """A secret is needed but cannot be had: not stored, no master key, or undecryptable."""

    code = "secret_unavailable"
    status = 503
    title = "Secret unavailable"


@dataclass(frozen=True, slots=True)
class SecretInfo:
    """What may be shown about a secret: its name and when it was set, never its value."""

    tenant_id: str
    name: str
    created_at: int
    updated_at: int

    @classmethod
    def from_row(cls, row: Row) -> SecretInfo:
        return cls(row["tenant_id"], row["name"], int(row["created_at"]), int(row["updated_at"]))

    def to_dict(self) -> dict[str, object]:
        return {"tenant_id": self.tenant_id, "name": self.name, "created_at": self.created_at,
                "updated_at": self.updated_at}  # fmt: skip


def master_key(settings: Settings, *, create: bool) -> bytes | None:
    """The master secret: configured, else the home's key file (made when ``create``)."""
    if settings.secrets.master_key is not None:
        return settings.secrets.master_key.get_secret_value().encode()
    path = settings.home / "master.key"
    if path.exists():
        return path.read_bytes().strip()
    if not create:
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    # O_EXCL: two first uses at once cannot each write a different key.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_bytes().strip()
    with os.fdopen(fd, "wb") as out:
        out.write(base64.urlsafe_b64encode(random.token_bytes(32)))
    return path.read_bytes().strip()


class SecretCipher:
    """AES-256-GCM under a key derived from the master secret."""

    def __init__(self, master: bytes) -> None:
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_KDF_INFO).derive(master)
        self._aead = AESGCM(key)

    def seal(self, tenant_id: str, name: str, value: str) -> str:
        nonce = random.token_bytes(12)
        sealed = self._aead.encrypt(nonce, value.encode(), _bound_to(tenant_id, name))
        return f"{_FORMAT}:{base64.b64encode(nonce + sealed).decode()}"

    def open(self, tenant_id: str, name: str, stored: str) -> str:
        version, _, body = stored.partition(":")
        try:
            if version != _FORMAT:
                raise ValueError(version)
            raw = base64.b64decode(body)
            return self._aead.decrypt(raw[:12], raw[12:], _bound_to(tenant_id, name)).decode()
        except (InvalidTag, ValueError) as exc:
            raise SecretUnavailable(
                f"secret {name!r} cannot be decrypted: the master key differs from the one it"
                " was stored with, or the stored value was altered"
            ) from exc


def _bound_to(tenant_id: str, name: str) -> bytes:
    return f"{tenant_id}/{name}".encode()


def check_name(name: str) -> str:
    if not SECRET_NAME.match(name):
        raise InvalidRequest(
            "a secret's name is 1-64 letters, digits, '_', '.' or '-', starting with a letter"
            " or digit",
            param="name",
        )
    return name


class SecretStore:
    """Named secrets per tenant; every change is audited in the same transaction."""

    def __init__(self, database: Database, audit: AuditLog, settings: Settings) -> None:
        self.database = database
        self.audit = audit
        self.settings = settings

    def _cipher(self, *, create: bool) -> SecretCipher:
        master = master_key(self.settings, create=create)
        if master is None:
            raise SecretUnavailable(
                "no master key: set secrets.master_key (ROOST_SECRETS__MASTER_KEY) or store"
                " a secret first (roost secrets set NAME), which makes home/master.key"
            )
        return SecretCipher(master)

    async def set(self, tenant_id: str, name: str, value: str, *, actor: str) -> SecretInfo:
        """Store or replace ``name``; the audit record commits with it or neither does."""
        check_name(name)
        if not value:
            raise InvalidRequest("a secret's value may not be empty", param="value")
        sealed = self._cipher(create=True).seal(tenant_id, name, value)
        at = now_ms()
        async with self.database.transaction() as conn:
            replaced = await conn.execute(
                text("UPDATE secrets SET ciphertext = :c, updated_at = :at"
                     " WHERE tenant_id = :t AND name = :n"),
                {"c": sealed, "at": at, "t": tenant_id, "n": name},
            )  # fmt: skip
            if not replaced.rowcount:
                await conn.execute(
                    text("INSERT INTO secrets (tenant_id, name, ciphertext, created_at,"
                         " updated_at) VALUES (:t, :n, :c, :at, :at)"),
                    {"c": sealed, "at": at, "t": tenant_id, "n": name},
                )  # fmt: skip
            await self.audit.append(
                conn, tenant_id, actor, "secret.set", target=name,
                details={"replaced": bool(replaced.rowcount)},
            )  # fmt: skip
        return await self._info(tenant_id, name)

    async def delete(self, tenant_id: str, name: str, *, actor: str) -> None:
        async with self.database.transaction() as conn:
            gone = await conn.execute(
                text("DELETE FROM secrets WHERE tenant_id = :t AND name = :n"),
                {"t": tenant_id, "n": name},
            )
            if not gone.rowcount:
                raise NotFound(f"secret {name!r} not found", param="name")
            await self.audit.append(conn, tenant_id, actor, "secret.delete", target=name)

    async def list(self, tenant_id: str) -> list[SecretInfo]:
        rows = await self.database.fetch_all(
            "SELECT tenant_id, name, created_at, updated_at FROM secrets WHERE tenant_id = :t"
            " ORDER BY name",
            {"t": tenant_id},
        )
        return [SecretInfo.from_row(row) for row in rows]

    async def reveal(self, tenant_id: str, name: str) -> str:
        """The plaintext, for the code that passes it to an SDK; never log or print it."""
        row = await self.database.fetch_one(
            "SELECT ciphertext FROM secrets WHERE tenant_id = :t AND name = :n",
            {"t": tenant_id, "n": name},
        )
        if row is None:
            raise SecretUnavailable(
                f"secret {name!r} is referenced but not stored (roost secrets set {name})"
            )
        return self._cipher(create=False).open(tenant_id, name, row["ciphertext"])

    async def _info(self, tenant_id: str, name: str) -> SecretInfo:
        row = await self.database.fetch_one(
            "SELECT tenant_id, name, created_at, updated_at FROM secrets"
            " WHERE tenant_id = :t AND name = :n",
            {"t": tenant_id, "n": name},
        )
        assert row is not None
        return SecretInfo.from_row(row)


def referenced_secret(value: str) -> str | None:
    """The name in ``secret:NAME``, or None when ``value`` is a literal."""
    if value.startswith(REFERENCE_PREFIX):
        return value[len(REFERENCE_PREFIX) :]
    return None
