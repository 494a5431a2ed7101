"""Prompt versions per tenant: immutable, numbered from 1, with labels that move.

Creating a prompt whose template, config and description equal the newest version's
returns that version, so ``roost prompts create`` is safe to repeat. ``latest`` always
means the newest version; any other label (``production``, ``staging``, custom) points
where it was last moved.
"""

from __future__ import annotations

import builtins
import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import text

from roost.errors import Conflict, InvalidRequest, NotFound
from roost.prompts.template import check_template
from roost.storage import Database, Row, now_ms

LATEST = "latest"
NAME_PATTERN = r"^[a-z][a-z0-9_.-]{0,63}$"
LABEL_PATTERN = r"^[a-z][a-z0-9_-]{0,31}$"
_NAME = re.compile(NAME_PATTERN)
_LABEL = re.compile(LABEL_PATTERN)


class PromptConfig(BaseModel):
    """The config block of a prompt version: what to call the model with."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str | None = Field(None, min_length=1, max_length=200)
    temperature: float | None = Field(None, ge=0, le=2)
    max_tokens: int | None = Field(None, ge=1)


@dataclass(frozen=True, slots=True)
class PromptRef:
    """``name``, ``name@label`` or ``name@3``: how specs and callers name a version."""

    name: str
    ref: str | int = LATEST

    @classmethod
    def parse(cls, value: str) -> PromptRef:
        name, _, ref = value.partition("@")
        if not _NAME.match(name):
            raise InvalidRequest(
                f"{value!r} is not a prompt reference (name@label)", param="prompt"
            )
        if not ref:
            return cls(name)
        if ref.isdigit():
            return cls(name, int(ref))
        if not _LABEL.match(ref):
            raise InvalidRequest(f"{ref!r} is not a prompt label or version", param="prompt")
        return cls(name, ref)

    def __str__(self) -> str:
        return f"{self.name}@{self.ref}"


@dataclass(frozen=True, slots=True)
class PromptVersion:
    name: str
    version: int
    template: str
    config: PromptConfig
    description: str
    digest: str
    created_at: int
    labels: tuple[str, ...] = ()
    variables: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        return {
            "object": "prompt",
            "name": self.name,
            "version": self.version,
            "template": self.template,
            "variables": list(self.variables),
            "config": self.config.model_dump(exclude_none=True),
            "description": self.description,
            "labels": list(self.labels),
            "digest": self.digest,
            "created_at": self.created_at,
        }


def check_name(name: str) -> str:
    if not _NAME.match(name):
        raise InvalidRequest(
            f"{name!r} is not a prompt name (lowercase letters, digits, . _ -)", param="name"
        )
    return name


def check_label(label: str) -> str:
    if label == LATEST or not _LABEL.match(label):
        raise InvalidRequest(
            f"{label!r} cannot be a label (lowercase letters, digits, _ -; not 'latest')",
            param="label",
        )
    return label


def _digest(template: str, config: PromptConfig, description: str) -> str:
    canonical = json.dumps(
        [template, config.model_dump(exclude_none=True), description], sort_keys=True
    )
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


class PromptStore:
    """Prompt versions and labels in the platform database; every query names a tenant."""

    def __init__(self, database: Database) -> None:
        self.database = database

    async def create(
        self,
        tenant_id: str,
        name: str,
        template: str,
        *,
        config: PromptConfig | None = None,
        description: str = "",
        labels: tuple[str, ...] = (),
    ) -> tuple[PromptVersion, bool]:
        """A new version unless the newest is identical; ``labels`` move to it."""
        check_name(name)
        check_template(template)
        for label in labels:
            check_label(label)
        config = config or PromptConfig()
        digest = _digest(template, config, description)
        for _ in range(3):  # two creators racing for one number: the loser retries
            newest = await self._row(tenant_id, name, None)
            if newest is not None and newest["digest"] == digest:
                version, created = int(newest["version"]), False
                break
            version = int(newest["version"]) + 1 if newest else 1
            try:
                await self.database.execute(
                    "INSERT INTO prompt_versions (tenant_id, name, version, template, config,"
                    " description, digest, created_at) VALUES (:t, :n, :v, :tpl, :c, :d, :g, :at)",
                    {"t": tenant_id, "n": name, "v": version, "tpl": template,
                     "c": config.model_dump_json(exclude_none=True), "d": description,
                     "g": digest, "at": now_ms()},
                )  # fmt: skip
            except Exception as exc:  # the unique violation's type differs by driver
                if "unique" in str(exc).lower() or "duplicate" in str(exc).lower():
                    continue
                raise
            created = True
            break
        else:
            raise Conflict(f"prompt {name!r} is being created concurrently; retry")
        for label in labels:
            await self.label(tenant_id, name, label, version)
        return await self.get(tenant_id, PromptRef(name, version)), created

    async def label(self, tenant_id: str, name: str, label: str, version: int) -> PromptVersion:
        """Point ``label`` at ``version`` (moving it from where it was)."""
        check_label(label)
        await self.get(tenant_id, PromptRef(name, version))
        params = {"t": tenant_id, "n": name, "l": label, "v": version, "u": now_ms()}
        async with self.database.transaction() as conn:
            await conn.execute(
                text("DELETE FROM prompt_labels WHERE tenant_id = :t AND name = :n AND label = :l"),
                params,
            )
            await conn.execute(
                text("INSERT INTO prompt_labels (tenant_id, name, label, version, updated_at)"
                     " VALUES (:t, :n, :l, :v, :u)"),
                params,
            )  # fmt: skip
        return await self.get(tenant_id, PromptRef(name, version))

    async def get(self, tenant_id: str, ref: PromptRef) -> PromptVersion:
        """The version ``ref`` names; 404 (also for another tenant's prompt)."""
        version: int | None
        if ref.ref == LATEST:
            version = None
        elif isinstance(ref.ref, int):
            version = ref.ref
        else:
            label = await self.database.fetch_one(
                "SELECT version FROM prompt_labels WHERE tenant_id = :t AND name = :n"
                " AND label = :l",
                {"t": tenant_id, "n": ref.name, "l": ref.ref},
            )
            if label is None:
                raise NotFound(f"prompt {ref.name!r} has no label {ref.ref!r}", param="prompt")
            version = int(label["version"])
        row = await self._row(tenant_id, ref.name, version)
        if row is None:
            where = "" if version is None else f" version {version}"
            raise NotFound(f"no prompt {ref.name!r}{where}", param="prompt")
        return await self._with_labels(tenant_id, row)

    async def list(self, tenant_id: str) -> builtins.list[PromptVersion]:
        """The newest version of each prompt, by name."""
        rows = await self.database.fetch_all(
            "SELECT p.* FROM prompt_versions p WHERE p.tenant_id = :t AND p.version ="
            " (SELECT MAX(version) FROM prompt_versions q WHERE q.tenant_id = p.tenant_id"
            " AND q.name = p.name) ORDER BY p.name",
            {"t": tenant_id},
        )
        return [await self._with_labels(tenant_id, row) for row in rows]

    async def versions(self, tenant_id: str, name: str) -> builtins.list[PromptVersion]:
        """Every version of ``name``, newest first."""
        rows = await self.database.fetch_all(
            "SELECT * FROM prompt_versions WHERE tenant_id = :t AND name = :n"
            " ORDER BY version DESC",
            {"t": tenant_id, "n": name},
        )
        if not rows:
            raise NotFound(f"no prompt {name!r}", param="prompt")
        return [await self._with_labels(tenant_id, row) for row in rows]

    async def _row(self, tenant_id: str, name: str, version: int | None) -> Row | None:
        if version is None:
            return await self.database.fetch_one(
                "SELECT * FROM prompt_versions WHERE tenant_id = :t AND name = :n"
                " ORDER BY version DESC LIMIT 1",
                {"t": tenant_id, "n": name},
            )
        return await self.database.fetch_one(
            "SELECT * FROM prompt_versions WHERE tenant_id = :t AND name = :n AND version = :v",
            {"t": tenant_id, "n": name, "v": version},
        )

    async def _with_labels(self, tenant_id: str, row: Row) -> PromptVersion:
        labels = await self.database.fetch_all(
            "SELECT label FROM prompt_labels WHERE tenant_id = :t AND name = :n AND version = :v"
            " ORDER BY label",
            {"t": tenant_id, "n": row["name"], "v": row["version"]},
        )
        template = str(row["template"])
        return PromptVersion(
            name=str(row["name"]),
            version=int(row["version"]),
            template=template,
            config=PromptConfig.model_validate_json(row["config"]),
            description=str(row["description"]),
            digest=str(row["digest"]),
            created_at=int(row["created_at"]),
            labels=tuple(str(r["label"]) for r in labels),
            variables=tuple(check_template(template)),
        )
