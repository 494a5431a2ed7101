"""Datasets per tenant: inputs with optional expected outputs, versioned on change.

``create`` makes version 1 (or a new version with exactly the given items when the name
exists and they differ); ``add`` appends items as a new version. Versions never change,
so an evaluation's ``dataset_version`` always names what it ran over.
"""

from __future__ import annotations

import builtins
import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import text

from roost.errors import Conflict, InvalidRequest, NotFound
from roost.storage import Database, Row, now_ms

NAME_PATTERN = r"^[a-z][a-z0-9_.-]{0,63}$"
MAX_ITEMS = 10_000


class DatasetItem(BaseModel):
    """One case: the run's input (a message, or an object sent as JSON), what a correct
    answer is (for the scorer), and template variables for the run."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    input: str | dict[str, Any]
    expected: Any = None
    variables: dict[str, Any] = Field(default_factory=dict)
    metadata: dict[str, Any] = Field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class DatasetVersion:
    name: str
    version: int
    description: str
    item_count: int
    digest: str
    created_at: int
    items: tuple[DatasetItem, ...] = ()

    def to_dict(self, *, items: bool = True) -> dict[str, Any]:
        body: dict[str, Any] = {
            "object": "dataset",
            "name": self.name,
            "version": self.version,
            "description": self.description,
            "item_count": self.item_count,
            "digest": self.digest,
            "created_at": self.created_at,
        }
        if items:
            body["items"] = [item.model_dump(mode="json") for item in self.items]
        return body


def check_name(name: str) -> str:
    if not re.match(NAME_PATTERN, name):
        raise InvalidRequest(
            f"{name!r} is not a dataset name (lowercase letters, digits, . _ -)", param="name"
        )
    return name


def _digest(description: str, items: builtins.list[DatasetItem]) -> str:
    canonical = json.dumps(
        [description, [i.model_dump(mode="json") for i in items]], sort_keys=True
    )
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


class DatasetStore:
    """Dataset versions and their items; every query names a tenant."""

    def __init__(self, database: Database) -> None:
        self.database = database

    async def create(
        self, tenant_id: str, name: str, items: builtins.list[DatasetItem], description: str = ""
    ) -> tuple[DatasetVersion, bool]:
        """Version 1, or a new version holding exactly ``items`` when they changed."""
        check_name(name)
        return await self._write(tenant_id, name, items, description)

    async def add(
        self, tenant_id: str, name: str, items: builtins.list[DatasetItem]
    ) -> tuple[DatasetVersion, bool]:
        """A new version with ``items`` appended to the newest one's."""
        if not items:
            raise InvalidRequest("add at least one item", param="items")
        newest = await self.get(tenant_id, name)
        return await self._write(tenant_id, name, [*newest.items, *items], newest.description)

    async def get(self, tenant_id: str, name: str, version: int | None = None) -> DatasetVersion:
        row = await self._row(tenant_id, name, version)
        if row is None:
            where = "" if version is None else f" version {version}"
            raise NotFound(f"no dataset {name!r}{where}", param="dataset")
        items = await self.database.fetch_all(
            "SELECT item FROM dataset_items WHERE tenant_id = :t AND name = :n AND version = :v"
            " ORDER BY position",
            {"t": tenant_id, "n": name, "v": row["version"]},
        )
        return _version(row, [DatasetItem.model_validate_json(r["item"]) for r in items])

    async def list(self, tenant_id: str) -> builtins.list[DatasetVersion]:
        """The newest version of each dataset (without items)."""
        rows = await self.database.fetch_all(
            "SELECT d.* FROM dataset_versions d WHERE d.tenant_id = :t AND d.version ="
            " (SELECT MAX(version) FROM dataset_versions e WHERE e.tenant_id = d.tenant_id"
            " AND e.name = d.name) ORDER BY d.name",
            {"t": tenant_id},
        )
        return [_version(row, []) for row in rows]

    async def _write(
        self, tenant_id: str, name: str, items: builtins.list[DatasetItem], description: str
    ) -> tuple[DatasetVersion, bool]:
        if len(items) > MAX_ITEMS:
            raise InvalidRequest(f"a dataset holds at most {MAX_ITEMS} items", param="items")
        digest = _digest(description, items)
        newest = await self._row(tenant_id, name, None)
        if newest is not None and newest["digest"] == digest:
            return await self.get(tenant_id, name, int(newest["version"])), False
        version = int(newest["version"]) + 1 if newest else 1
        try:
            async with self.database.transaction() as conn:
                await conn.execute(
                    text("INSERT INTO dataset_versions (tenant_id, name, version, description,"
                         " item_count, digest, created_at) VALUES (:t, :n, :v, :d, :c, :g, :at)"),
                    {"t": tenant_id, "n": name, "v": version, "d": description,
                     "c": len(items), "g": digest, "at": now_ms()},
                )  # fmt: skip
                if items:
                    await conn.execute(
                        text("INSERT INTO dataset_items (tenant_id, name, version, position,"
                             " item) VALUES (:t, :n, :v, :p, :i)"),
                        [{"t": tenant_id, "n": name, "v": version, "p": position,
                          "i": item.model_dump_json()} for position, item in enumerate(items)],
                    )  # fmt: skip
        except Exception as exc:  # the unique violation's type differs by driver
            if "unique" in str(exc).lower() or "duplicate" in str(exc).lower():
                raise Conflict(f"dataset {name!r} changed concurrently; retry") from exc
            raise
        return await self.get(tenant_id, name, version), True

    async def _row(self, tenant_id: str, name: str, version: int | None) -> Row | None:
        if version is None:
            return await self.database.fetch_one(
                "SELECT * FROM dataset_versions WHERE tenant_id = :t AND name = :n"
                " ORDER BY version DESC LIMIT 1",
                {"t": tenant_id, "n": name},
            )
        return await self.database.fetch_one(
            "SELECT * FROM dataset_versions WHERE tenant_id = :t AND name = :n AND version = :v",
            {"t": tenant_id, "n": name, "v": version},
        )


def _version(row: Row, items: builtins.list[DatasetItem]) -> DatasetVersion:
    return DatasetVersion(
        name=str(row["name"]),
        version=int(row["version"]),
        description=str(row["description"]),
        item_count=int(row["item_count"]),
        digest=str(row["digest"]),
        created_at=int(row["created_at"]),
        items=tuple(items),
    )
