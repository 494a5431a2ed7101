"""One tenant out of a home and into another: ``backup create --tenant T`` and the
restore of such an archive.

Rows are exported as JSON lines from every table that has a ``tenant_id`` column (and
the tenant's own row), so they load into either backend; vector items travel with their
vectors, checkpoints with their blobs, KV cold files are renamed on import for the
target's naming secret, and the tenant's workspaces are copied. Import refuses a home
that already has a tenant with that id or name; it adds, it never replaces.
"""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path
from typing import Any

from sqlalchemy import text

from roost.backup.errors import BackupRefused
from roost.config import Settings
from roost.platform.layout import HomeLayout
from roost.platform.schema import migrate_all, stored_schema_versions, table_names
from roost.storage import Database
from roost.storage.migrations import VERSION_TABLE

CHECKPOINT_TABLES = ("graph_checkpoints", "graph_events")
_SKIPPED = (VERSION_TABLE, "tenants", *CHECKPOINT_TABLES)
_SKIPPED_PREFIXES = ("memory_items", "memory_vec_", "memory_spaces", "memory_fts", "dbos")
_SERIAL_IDS = {"run_events": "id"}  # assigned by the target, so they never collide


def _encode(value: Any) -> Any:
    if isinstance(value, bytes | bytearray | memoryview):
        return {"$b64": base64.b64encode(bytes(value)).decode()}
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, dict) and set(value) == {"$b64"}:
        return base64.b64decode(value["$b64"])
    return value


async def export_tenant(
    settings: Settings, tenant: str, staging: Path
) -> tuple[dict[str, str], dict[str, Path], dict[str, int]]:
    """Write the tenant's rows, vectors and checkpoints under ``staging``; returns the
    tenant ({"id", "name"}), member name -> staged file, and the schema versions."""
    layout = HomeLayout.of(settings)
    database = await Database.connect(settings.database_url, settings.storage)
    files: dict[str, Path] = {}
    try:
        row = await database.fetch_one(
            "SELECT * FROM tenants WHERE id = :t OR name = :t", {"t": tenant}
        )
        if row is None:
            raise BackupRefused(f"no tenant {tenant!r} in this home")
        tenant_id = str(row["id"])
        rows_file = staging / "tenant-rows.jsonl"
        with rows_file.open("w") as out:
            out.write(json.dumps({"table": "tenants", "row": row}) + "\n")
            for table in await table_names(database):
                if table in _SKIPPED or table.startswith(_SKIPPED_PREFIXES):
                    continue
                async with database.engine.connect() as conn:
                    result = await conn.execute(text(f'SELECT * FROM "{table}" LIMIT 0'))
                    if "tenant_id" not in list(result.keys()):
                        continue
                for found in await database.fetch_all(
                    f'SELECT * FROM "{table}" WHERE tenant_id = :t', {"t": tenant_id}
                ):
                    encoded = {k: _encode(v) for k, v in found.items()}
                    out.write(json.dumps({"table": table, "row": encoded}) + "\n")
        files["tenant/rows.jsonl"] = rows_file
        files["tenant/vectors.jsonl"] = await _export_vectors(layout, database, tenant_id, staging)
        files["tenant/checkpoints.jsonl"] = await _export_checkpoints(
            settings, layout, tenant_id, staging
        )
        schema = await stored_schema_versions(database)
    finally:
        await database.close()
    return {"id": tenant_id, "name": str(row["name"])}, files, schema


async def _export_vectors(
    layout: HomeLayout, database: Database, tenant_id: str, staging: Path
) -> Path:
    from roost.memory import vector_transfer

    if "memory_items" in await table_names(database):
        rows = [
            r for r in await vector_transfer.read_postgres(database) if r.tenant_id == tenant_id
        ]
    elif layout.vectors.exists():
        rows = [r for r in vector_transfer.read_sqlite(layout.vectors) if r.tenant_id == tenant_id]
    else:
        rows = []
    target = staging / "tenant-vectors.jsonl"
    with target.open("w") as out:
        for r in rows:
            record = {"tenant_id": r.tenant_id, "id": r.id, "namespace": r.namespace, "text": r.text,
                      "metadata": r.metadata, "embedder": r.embedder, "created_at": r.created_at,
                      "updated_at": r.updated_at, "vector": _encode(r.vector.astype("float32").tobytes())}  # fmt: skip
            out.write(json.dumps(record) + "\n")
    return target


def _checkpoints_url(settings: Settings, layout: HomeLayout) -> str | None:
    if layout.checkpoints is None:
        return settings.database_url
    return f"sqlite:///{layout.checkpoints}"


async def _export_checkpoints(
    settings: Settings, layout: HomeLayout, tenant_id: str, staging: Path
) -> Path:
    target = staging / "tenant-checkpoints.jsonl"
    url = _checkpoints_url(settings, layout)
    with target.open("w") as out:
        if layout.checkpoints is not None and not layout.checkpoints.exists():
            return target
        assert url is not None
        database = await Database.connect(url)
        try:
            present = await table_names(database)
            for table in CHECKPOINT_TABLES:
                if table not in present:
                    continue
                for found in await database.fetch_all(
                    f"SELECT * FROM {table} WHERE tenant_id = :t", {"t": tenant_id}
                ):
                    encoded = {k: _encode(v) for k, v in found.items()}
                    out.write(json.dumps({"table": table, "row": encoded}) + "\n")
        finally:
            await database.close()
    return target


async def import_tenant(settings: Settings, staged: Path, tenant: dict[str, str]) -> None:
    """Add the exported tenant to this home (which must not have it)."""
    import numpy as np

    from roost.graph.checkpoint import sql
    from roost.memory import vector_transfer

    layout = HomeLayout.of(settings)
    database = await Database.connect(settings.database_url, settings.storage)
    try:
        await migrate_all(database)
        clash = await database.fetch_one(
            "SELECT id FROM tenants WHERE id = :i OR name = :n",
            {"i": tenant["id"], "n": tenant["name"]},
        )
        if clash is not None:
            raise BackupRefused(
                f"this home already has tenant {tenant['name']!r}: a tenant export only adds"
            )
        async with database.transaction() as conn:
            for line in (staged / "tenant" / "rows.jsonl").read_text().splitlines():
                record = json.loads(line)
                row = {k: _decode(v) for k, v in record["row"].items()}
                row.pop(_SERIAL_IDS.get(record["table"], ""), None)
                names = ", ".join(f'"{c}"' for c in row)
                values = ", ".join(f":{c}" for c in row)
                await conn.execute(
                    text(f'INSERT INTO "{record["table"]}" ({names}) VALUES ({values})'), row
                )
        vectors = [
            vector_transfer.VectorRow(
                r["tenant_id"], r["id"], r["namespace"], r["text"], r["metadata"], r["embedder"],
                int(r["created_at"]), int(r["updated_at"]),
                np.frombuffer(_decode(r["vector"]), dtype=np.float32),
            )
            for r in map(json.loads, (staged / "tenant" / "vectors.jsonl").read_text().splitlines())
        ]  # fmt: skip
        if vectors:
            if (
                "memory_items" in await table_names(database)
                and settings.memory.vector_backend != "sqlite"
            ):
                await vector_transfer.write_postgres(database, vectors)
            else:
                vector_transfer.write_sqlite(layout.vectors, vectors)
    finally:
        await database.close()
    checkpoints = (staged / "tenant" / "checkpoints.jsonl").read_text().splitlines()
    if checkpoints:
        url = _checkpoints_url(settings, layout)
        assert url is not None
        target = await Database.connect(url)
        try:
            on_sqlite = target.dialect == "sqlite"
            for statement in sql.schema(
                *(
                    ("BLOB", "REAL", "WITHOUT ROWID")
                    if on_sqlite
                    else ("BYTEA", "DOUBLE PRECISION", "")
                )
            ).split(";"):
                if statement.strip():
                    await target.execute(statement)
            async with target.transaction() as conn:
                for line in checkpoints:
                    record = json.loads(line)
                    row = {k: _decode(v) for k, v in record["row"].items()}
                    names = ", ".join(row)
                    values = ", ".join(f":{c}" for c in row)
                    await conn.execute(
                        text(f"INSERT INTO {record['table']} ({names}) VALUES ({values})"), row
                    )
        finally:
            await target.close()


def stage_tenant_files(
    layout: HomeLayout, tenant_id: str, staging: Path, *, with_kv: bool
) -> dict[str, tuple[Path, str]]:
    """KV cold files and workspace files of the tenant: member -> (staged file, role)."""
    found: dict[str, tuple[Path, str]] = {}
    workspace = layout.workspaces / tenant_id
    if workspace.is_dir():
        for file in sorted(p for p in workspace.rglob("*") if p.is_file()):
            relative = file.relative_to(layout.workspaces).as_posix()
            target = staging / "workspace" / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(file, target)
            found[f"workspace/{relative}"] = (target, "workspace")
    if with_kv and layout.kv.is_dir():
        from roost.kvcache.cold_store import ColdStore

        # The home's files are sealed with its own key, which stays home: the tenant's are
        # resealed with a key made for this archive, which travels in it (kv/.secret).
        for directory in sorted(p for p in layout.kv.iterdir() if p.is_dir()):
            store = ColdStore(directory, model_digest=directory.name, tokenizer_digest="")
            staged = ColdStore(
                staging / "kv" / directory.name, model_digest=directory.name, tokenizer_digest=""
            )
            for info in store.list():
                if info.identity.tenant_id == tenant_id:
                    target = staged.adopt(info.path, store)
                    found[f"kv/{directory.name}/{target.name}"] = (target, "kv")
        secret = staging / "kv" / ".secret"
        if secret.is_file() and any(role == "kv" for _, role in found.values()):
            found["kv/.secret"] = (secret, "kv")
    return found


def place_tenant_kv(layout: HomeLayout, staged_kv: Path) -> None:
    """KV files are named with the home's secret: rename each for this home's."""
    from roost.kvcache.cold_store import ColdStore

    for directory in sorted(p for p in staged_kv.iterdir() if p.is_dir()):
        reader = ColdStore(directory, model_digest=directory.name, tokenizer_digest="")
        target = ColdStore(
            layout.kv / directory.name, model_digest=directory.name, tokenizer_digest=""
        )
        for info in reader.list():
            target.adopt(info.path, reader)
            info.path.unlink()
