"""One agent out of a home and into another (or into another tenant of the same home):
``roost backup export --agent NAME FILE`` and ``roost backup import FILE``.

The file is a backup archive (the same manifest with per-member SHA-256, the same
reader, so a tampered or truncated file is refused naming the member that failed) with
three members of JSON lines:

- ``agent/rows.jsonl``: every version and tag of the agent's spec, its runs with their
  events, its threads (those its runs ran on) and their short-term windows;
- ``agent/vectors.jsonl``: its long-term and procedural memories with their vectors
  (nothing is re-embedded on import);
- ``agent/checkpoints.jsonl``: the checkpoints of its threads.

Import adds the agent to a tenant of this home (``--tenant``, else the default one). A
tenant that already has an agent of that name is refused unless ``--rename NEW``. Ids
that would collide in the target (a thread id the tenant already uses, a run id the
home already has: exporting and importing within one home) are replaced by fresh ones,
consistently across every table; ids that are free are kept, so a round trip into a
fresh home keeps thread ids clients already know. Not carried: the DBOS queue (an
unfinished run does not resume), the consolidation journal, caches.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import bindparam, text

from roost import __version__
from roost.backup.archive import read_archive, sha256_file, write_archive
from roost.backup.errors import BackupRefused
from roost.backup.manifest import FileEntry, Manifest
from roost.backup.tenant_export import _checkpoints_url, _decode, _encode
from roost.backup.verify import newer_schema
from roost.config import Settings
from roost.platform.layout import HomeLayout
from roost.platform.schema import migrate_all, stored_schema_versions, table_names
from roost.storage import Database, new_id

MEMBERS = ("agent/rows.jsonl", "agent/vectors.jsonl", "agent/checkpoints.jsonl")
_ROLES = {"agent/rows.jsonl": "agent-rows", "agent/vectors.jsonl": "agent-vectors",
          "agent/checkpoints.jsonl": "agent-checkpoints"}  # fmt: skip
_CHECKPOINT_TABLES = ("graph_checkpoints", "graph_events")
_NAMESPACES = ("ltm:", "proc:")  # long-term and procedural memory of one agent


@dataclass(frozen=True, slots=True)
class ImportedAgent:
    name: str
    tenant_id: str
    versions: int
    threads: int
    runs: int
    memories: int
    renamed_ids: list[str]  # kinds of ids replaced because they were taken


def _in(query: str, **values: Any) -> Any:
    return text(query).bindparams(*(bindparam(k, expanding=True) for k in values))


async def _rows(database: Database, query: str, **params: Any) -> list[dict[str, Any]]:
    lists = {k: v for k, v in params.items() if isinstance(v, list)}
    if any(not v for v in lists.values()):
        return []
    async with database.engine.connect() as conn:
        result = await conn.execute(_in(query, **lists), params)
        return [dict(r._mapping) for r in result]


def export_agent(settings: Settings, agent: str, tenant: str | None, out: Path) -> Manifest:
    """Write the agent ``agent`` of ``tenant`` (name or id; default: the default tenant) to
    ``out``; returns the manifest written."""
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".roost-agent-", dir=out.parent))
    try:
        info, schema = asyncio.run(_export(settings, agent, tenant, staging))
        files = {name: staging / name for name in MEMBERS}
        manifest = Manifest(
            roost_version=__version__, created_at_ms=int(time.time() * 1000),
            dialect=HomeLayout.of(settings).dialect, schema=schema, label=f"agent-{agent}",
            files=[FileEntry(name, _ROLES[name], sha256_file(path), path.stat().st_size)  # type: ignore[arg-type]
                   for name, path in files.items()],
            agent=info,
        )  # fmt: skip
        write_archive(out, manifest, files, passphrase=None)
        out.chmod(0o600)
        return manifest
    finally:
        shutil.rmtree(staging, ignore_errors=True)


async def _export(
    settings: Settings, agent: str, tenant: str | None, staging: Path
) -> tuple[dict[str, str], dict[str, int]]:
    layout = HomeLayout.of(settings)
    (staging / "agent").mkdir(parents=True)
    database = await Database.connect(settings.database_url, settings.storage)
    try:
        tenant_id, tenant_name = await _tenant(database, tenant)
        t = {"t": tenant_id, "a": agent}
        versions = await _rows(
            database, "SELECT * FROM agent_versions WHERE tenant_id = :t AND name = :a", **t
        )
        if not versions:
            raise BackupRefused(f"no agent {agent!r} in tenant {tenant_name!r}")
        runs = await _rows(
            database, "SELECT * FROM agent_runs WHERE tenant_id = :t AND agent = :a", **t
        )
        threads = sorted({str(r["thread_id"]) for r in runs})
        run_ids = [str(r["id"]) for r in runs]
        tables: list[tuple[str, list[dict[str, Any]]]] = [
            ("agent_versions", versions),
            ("agent_tags", await _rows(
                database, "SELECT * FROM agent_tags WHERE tenant_id = :t AND name = :a", **t)),
            ("agent_threads", await _rows(
                database, "SELECT * FROM agent_threads WHERE tenant_id = :t AND id IN :ids",
                t=tenant_id, ids=threads)),
            ("agent_runs", runs),
            ("run_events", await _rows(
                database, "SELECT * FROM run_events WHERE tenant_id = :t AND run_id IN :ids"
                " ORDER BY id", t=tenant_id, ids=run_ids)),
            ("memory_threads", await _rows(
                database, "SELECT * FROM memory_threads WHERE tenant_id = :t AND thread_id IN :ids",
                t=tenant_id, ids=threads)),
            ("memory_turns", await _rows(
                database, "SELECT * FROM memory_turns WHERE tenant_id = :t AND thread_id IN :ids",
                t=tenant_id, ids=threads)),
        ]  # fmt: skip
        _write_lines(staging / MEMBERS[0], (
            {"table": table, "row": {k: _encode(v) for k, v in row.items()}}
            for table, rows in tables for row in rows
        ))  # fmt: skip
        memories = [
            r for r in await _read_vectors(layout, database)
            if r.tenant_id == tenant_id and r.namespace in {p + agent for p in _NAMESPACES}
        ]  # fmt: skip
        _write_lines(staging / MEMBERS[1], (
            {"id": r.id, "namespace": r.namespace, "text": r.text, "metadata": r.metadata,
             "embedder": r.embedder, "created_at": r.created_at, "updated_at": r.updated_at,
             "vector": _encode(r.vector.astype("float32").tobytes())}
            for r in memories
        ))  # fmt: skip
        checkpoints = await _read_checkpoints(settings, layout, tenant_id, threads)
        _write_lines(staging / MEMBERS[2], checkpoints)
        schema = await stored_schema_versions(database)
    finally:
        await database.close()
    return {"name": agent, "tenant_id": tenant_id, "tenant_name": tenant_name}, schema


async def _tenant(database: Database, tenant: str | None) -> tuple[str, str]:
    from roost.security.tenants import DEFAULT_TENANT

    wanted = tenant or DEFAULT_TENANT
    row = await database.fetch_one(
        "SELECT id, name FROM tenants WHERE id = :t OR name = :t", {"t": wanted}
    )
    if row is None:
        raise BackupRefused(f"no tenant {wanted!r} in this home")
    return str(row["id"]), str(row["name"])


async def _read_vectors(layout: HomeLayout, database: Database) -> list[Any]:
    from roost.memory import vector_transfer

    if "memory_items" in await table_names(database):
        return list(await vector_transfer.read_postgres(database))
    if layout.vectors.exists():
        return list(vector_transfer.read_sqlite(layout.vectors))
    return []


async def _read_checkpoints(
    settings: Settings, layout: HomeLayout, tenant_id: str, threads: list[str]
) -> list[dict[str, Any]]:
    if not threads or (layout.checkpoints is not None and not layout.checkpoints.exists()):
        return []
    url = _checkpoints_url(settings, layout)
    assert url is not None
    database = await Database.connect(url)
    try:
        present = await table_names(database)
        return [
            {"table": table, "row": {k: _encode(v) for k, v in row.items()}}
            for table in _CHECKPOINT_TABLES if table in present
            for row in await _rows(
                database, f"SELECT * FROM {table} WHERE tenant_id = :t AND thread_id IN :ids",
                t=tenant_id, ids=threads)
        ]  # fmt: skip
    finally:
        await database.close()


def _write_lines(path: Path, records: Iterable[dict[str, Any]]) -> None:
    with path.open("w") as out:
        for record in records:
            out.write(json.dumps(record) + "\n")


def _read_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line]


def import_agent(
    settings: Settings, archive: Path, *, tenant: str | None = None, rename: str | None = None
) -> ImportedAgent:
    """Check every member of ``archive``, then add its agent to ``tenant`` of this home."""
    layout = HomeLayout.of(settings)
    layout.home.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".roost-agent-", dir=layout.home.parent))
    try:
        with read_archive(archive, None) as (manifest, members):
            for member in members:  # each member is hashed as it is read: a bad one raises
                target = staging / member.entry.path
                target.parent.mkdir(parents=True, exist_ok=True)
                with target.open("wb") as out:
                    while chunk := member.stream.read(1 << 20):
                        out.write(chunk)
        if manifest.agent is None or set(MEMBERS) - {f.path for f in manifest.files}:
            raise BackupRefused(f"{archive.name} is not an agent export (`backup export --agent`)")
        newer = newer_schema(manifest)
        if newer:
            raise BackupRefused("the file comes from a newer Roost schema: " + ", ".join(newer))
        return asyncio.run(_import(settings, layout, staging, manifest.agent, tenant, rename))
    finally:
        shutil.rmtree(staging, ignore_errors=True)


class _Ids:
    """Old id -> id in the target: kept where free, fresh where taken."""

    def __init__(self, prefix: str, old: Iterable[str], taken: set[str]) -> None:
        self.map = {o: (new_id(prefix) if o in taken else o) for o in old}
        self.changed = any(o != n for o, n in self.map.items())

    def __call__(self, old: Any) -> Any:
        return self.map.get(old, old)


async def _import(
    settings: Settings, layout: HomeLayout, staged: Path, agent: dict[str, str],
    tenant: str | None, rename: str | None,
) -> ImportedAgent:  # fmt: skip
    import numpy as np

    from roost.agents.spec import AgentSpec
    from roost.memory import vector_transfer

    rows = _read_lines(staged / MEMBERS[0])
    vectors = _read_lines(staged / MEMBERS[1])
    checkpoints = _read_lines(staged / MEMBERS[2])
    name = rename or agent["name"]
    database = await Database.connect(settings.database_url, settings.storage)
    try:
        await migrate_all(database)
        if tenant is None:  # a fresh home has its default tenant from its first start on
            from roost.security.tenants import DEFAULT_TENANT, TenantStore

            await TenantStore(database).ensure(DEFAULT_TENANT)
        tenant_id, tenant_name = await _tenant(database, tenant)
        if await database.fetch_one(
            "SELECT 1 AS x FROM agent_versions WHERE tenant_id = :t AND name = :n",
            {"t": tenant_id, "n": name},
        ):
            raise BackupRefused(
                f"tenant {tenant_name!r} already has an agent {name!r}: pass --rename NEW"
            )
        of = {table: [r["row"] for r in rows if r["table"] == table] for table in
              ("agent_threads", "agent_runs", "memory_turns")}  # fmt: skip
        threads = _Ids("thr", [r["id"] for r in of["agent_threads"]], {str(r["id"]) for r in await _rows(
            database, "SELECT id FROM agent_threads WHERE tenant_id = :t AND id IN :ids",
            t=tenant_id, ids=[r["id"] for r in of["agent_threads"]])})  # fmt: skip
        runs = _Ids("run", [r["id"] for r in of["agent_runs"]], {str(r["id"]) for r in await _rows(
            database, "SELECT id FROM agent_runs WHERE id IN :ids", ids=[r["id"] for r in of["agent_runs"]])})  # fmt: skip
        turns = _Ids("turn", [r["id"] for r in of["memory_turns"]], {str(r["id"]) for r in await _rows(
            database, "SELECT id FROM memory_turns WHERE tenant_id = :t AND id IN :ids",
            t=tenant_id, ids=[r["id"] for r in of["memory_turns"]])})  # fmt: skip
        existing = {r.id for r in await _read_vectors(layout, database) if r.tenant_id == tenant_id}
        items = _Ids("mem", [v["id"] for v in vectors], existing)
        async with database.transaction() as conn:
            for record in rows:
                table = record["table"]
                row = {k: _decode(v) for k, v in record["row"].items()}
                row["tenant_id"] = tenant_id
                if table in ("agent_versions", "agent_tags"):
                    row["name"] = name
                if table == "agent_versions" and name != agent["name"]:
                    spec = AgentSpec.model_validate({**json.loads(row["spec"]), "name": name})
                    row["spec"], row["digest"] = (
                        json.dumps(spec.model_dump(mode="json")),
                        spec.digest(),
                    )
                if table == "agent_threads":
                    row["id"] = threads(row["id"])
                if table == "agent_runs":
                    row.update(id=runs(row["id"]), thread_id=threads(row["thread_id"]),
                               agent=name, workflow_id=None)  # fmt: skip
                if table == "run_events":
                    row.pop("id", None)  # assigned by the target
                    row["run_id"] = runs(row["run_id"])
                if table in ("memory_threads", "memory_turns"):
                    row["thread_id"] = threads(row["thread_id"])
                if table == "memory_turns":
                    row["id"] = turns(row["id"])
                names = ", ".join(f'"{c}"' for c in row)
                values = ", ".join(f":{c}" for c in row)
                await conn.execute(text(f'INSERT INTO "{table}" ({names}) VALUES ({values})'), row)
        memories = [
            vector_transfer.VectorRow(
                tenant_id, items(v["id"]), v["namespace"].split(":", 1)[0] + ":" + name, v["text"],
                v["metadata"], v["embedder"], int(v["created_at"]), int(v["updated_at"]),
                np.frombuffer(_decode(v["vector"]), dtype=np.float32),
            )
            for v in vectors
        ]  # fmt: skip
        if memories:
            if (
                "memory_items" in await table_names(database)
                and settings.memory.vector_backend != "sqlite"
            ):
                await vector_transfer.write_postgres(database, memories)
            else:
                vector_transfer.write_sqlite(layout.vectors, memories)
    finally:
        await database.close()
    if checkpoints:
        await _write_checkpoints(settings, layout, checkpoints, tenant_id, threads)
    renamed = [kind for kind, ids in (("thread", threads), ("run", runs), ("turn", turns),
                                      ("memory", items)) if ids.changed]  # fmt: skip
    return ImportedAgent(
        name, tenant_id, sum(r["table"] == "agent_versions" for r in rows), len(threads.map),
        len(runs.map), len(memories), renamed,
    )  # fmt: skip


async def _write_checkpoints(
    settings: Settings, layout: HomeLayout, records: list[dict[str, Any]], tenant_id: str,
    threads: _Ids,
) -> None:  # fmt: skip
    from roost.graph.checkpoint import sql

    url = _checkpoints_url(settings, layout)
    assert url is not None
    target = await Database.connect(url)
    try:
        types = (
            ("BLOB", "REAL", "WITHOUT ROWID")
            if target.dialect == "sqlite"
            else ("BYTEA", "DOUBLE PRECISION", "")
        )
        for statement in sql.schema(*types).split(";"):
            if statement.strip():
                await target.execute(statement)
        async with target.transaction() as conn:
            for record in records:
                row = {k: _decode(v) for k, v in record["row"].items()}
                row.update(tenant_id=tenant_id, thread_id=threads(row["thread_id"]))
                names, values = ", ".join(row), ", ".join(f":{c}" for c in row)
                await conn.execute(
                    text(f"INSERT INTO {record['table']} ({names}) VALUES ({values})"), row
                )
    finally:
        await target.close()
