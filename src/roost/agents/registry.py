"""Agent versions per tenant: immutable, numbered from 1, with movable tags (``prod``, ``staging``).

Registering a spec identical to the newest version returns that version instead of
making a new one, so ``roost agents create`` is safe to repeat.
"""

from __future__ import annotations

import builtins
import json
from dataclasses import dataclass

from sqlalchemy import text

from roost.agents.spec import AgentSpec, parse_spec
from roost.errors import Conflict, InvalidRequest, NotFound
from roost.storage import Database, Row, now_ms

LATEST = "latest"


@dataclass(frozen=True, slots=True)
class AgentVersion:
    """One registered version of an agent."""

    name: str
    version: int
    spec: AgentSpec
    digest: str
    created_at: int
    tags: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, object]:
        return {
            "object": "agent",
            "name": self.name,
            "version": self.version,
            "digest": self.digest,
            "created_at": self.created_at,
            "tags": list(self.tags),
            "spec": self.spec.model_dump(mode="json"),
        }


class AgentRegistry:
    """Agent versions and tags in the platform database; every query is scoped to a tenant."""

    def __init__(self, database: Database) -> None:
        self.database = database
        # Specs every tenant has (the kernel adds the bundled ``coder``): registered for a
        # tenant the first time it asks for the newest version of that name.
        self.bundled: dict[str, AgentSpec] = {}

    async def create(
        self, tenant_id: str, spec: AgentSpec, *, tags: tuple[str, ...] = ()
    ) -> tuple[AgentVersion, bool]:
        """Register ``spec``; returns the version and whether it is new. Tags move to it."""
        digest = spec.digest()
        for _ in range(3):  # two creators racing for the same number: the loser retries
            newest = await self._newest(tenant_id, spec.name)
            if newest is not None and newest.digest == digest:
                created, version = False, newest.version
                break
            version = (newest.version if newest else 0) + 1
            try:
                await self.database.execute(
                    "INSERT INTO agent_versions (tenant_id, name, version, spec, digest, created_at)"
                    " VALUES (:t, :n, :v, :s, :d, :c)",
                    {
                        "t": tenant_id,
                        "n": spec.name,
                        "v": version,
                        "s": json.dumps(spec.model_dump(mode="json")),
                        "d": digest,
                        "c": now_ms(),
                    },
                )
            except Exception as exc:  # unique violation differs by driver
                if "UNIQUE" in str(exc).upper() or "duplicate" in str(exc):
                    continue
                raise
            created = True
            break
        else:
            raise Conflict(f"agent {spec.name!r} is being registered concurrently; retry")
        for tag in tags:
            await self.tag(tenant_id, spec.name, tag, version)
        return await self.get(tenant_id, spec.name, version), created

    async def tag(self, tenant_id: str, name: str, tag: str, version: int) -> None:
        """Point ``tag`` at ``version`` (moving it if it pointed elsewhere)."""
        if tag == LATEST or tag.isdigit():
            raise InvalidRequest(f"{tag!r} cannot be used as a tag", param="tag")
        await self.get(tenant_id, name, version)
        async with self.database.transaction() as conn:
            params = {"t": tenant_id, "n": name, "g": tag, "v": version, "u": now_ms()}
            await conn.execute(
                text("DELETE FROM agent_tags WHERE tenant_id = :t AND name = :n AND tag = :g"),
                params,
            )
            await conn.execute(
                text(
                    "INSERT INTO agent_tags (tenant_id, name, tag, version, updated_at)"
                    " VALUES (:t, :n, :g, :v, :u)"
                ),
                params,
            )

    async def get(self, tenant_id: str, name: str, ref: int | str | None = None) -> AgentVersion:
        """A version by number, tag, or the newest (``None`` / ``"latest"``)."""
        if isinstance(ref, str) and ref.isdigit():
            ref = int(ref)
        if ref is None or ref == LATEST:
            found = await self._newest(tenant_id, name)
        elif isinstance(ref, int):
            found = await self._version(tenant_id, name, ref)
        else:
            row = await self.database.fetch_one(
                "SELECT version FROM agent_tags WHERE tenant_id = :t AND name = :n AND tag = :g",
                {"t": tenant_id, "n": name, "g": ref},
            )
            found = await self._version(tenant_id, name, int(row["version"])) if row else None
        if found is None and ref in (None, LATEST) and name in self.bundled:
            found, _ = await self.create(tenant_id, self.bundled[name])
        if found is None:
            where = "" if ref in (None, LATEST) else f" at {ref!r}"
            raise NotFound(f"no agent {name!r}{where}", param="agent")
        return found

    async def list(self, tenant_id: str) -> list[AgentVersion]:
        """The newest version of every agent, by name."""
        rows = await self.database.fetch_all(
            "SELECT v.* FROM agent_versions v WHERE v.tenant_id = :t AND v.version ="
            " (SELECT MAX(version) FROM agent_versions w WHERE w.tenant_id = v.tenant_id"
            " AND w.name = v.name) ORDER BY v.name",
            {"t": tenant_id},
        )
        return [await self._with_tags(tenant_id, row) for row in rows]

    async def versions(self, tenant_id: str, name: str) -> builtins.list[AgentVersion]:
        """Every version of ``name``, newest first."""
        rows = await self.database.fetch_all(
            "SELECT * FROM agent_versions WHERE tenant_id = :t AND name = :n ORDER BY version DESC",
            {"t": tenant_id, "n": name},
        )
        if not rows:
            raise NotFound(f"no agent {name!r}", param="agent")
        return [await self._with_tags(tenant_id, row) for row in rows]

    async def _newest(self, tenant_id: str, name: str) -> AgentVersion | None:
        row = await self.database.fetch_one(
            "SELECT * FROM agent_versions WHERE tenant_id = :t AND name = :n"
            " ORDER BY version DESC LIMIT 1",
            {"t": tenant_id, "n": name},
        )
        return await self._with_tags(tenant_id, row) if row else None

    async def _version(self, tenant_id: str, name: str, version: int) -> AgentVersion | None:
        row = await self.database.fetch_one(
            "SELECT * FROM agent_versions WHERE tenant_id = :t AND name = :n AND version = :v",
            {"t": tenant_id, "n": name, "v": version},
        )
        return await self._with_tags(tenant_id, row) if row else None

    async def _with_tags(self, tenant_id: str, row: Row) -> AgentVersion:
        tags = await self.database.fetch_all(
            "SELECT tag FROM agent_tags WHERE tenant_id = :t AND name = :n AND version = :v"
            " ORDER BY tag",
            {"t": tenant_id, "n": row["name"], "v": row["version"]},
        )
        return AgentVersion(
            name=str(row["name"]),
            version=int(row["version"]),
            spec=parse_spec(json.loads(row["spec"])),
            digest=str(row["digest"]),
            created_at=int(row["created_at"]),
            tags=tuple(str(t["tag"]) for t in tags),
        )
