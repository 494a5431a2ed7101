"""The folders of the knowledge base: each root a collection syncs, with its last sync.

A folder is recorded when it is added and after every sync of its collection (by hand,
on the interval, or on a file change), so ``roost kb sources`` can say when each was
last synced and whether that went well: ``ok``, ``failed`` (some files could not be
read; the message says how many and the first reason) or ``missing`` (the folder is
gone; its sources were removed).
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass

from roost.storage import Database, now_ms


@dataclass(frozen=True, slots=True)
class Folder:
    tenant_id: str
    collection_id: str
    root: str
    added_at: int
    last_sync_at: int | None
    status: str  # ok, failed, missing
    message: str
    num_files: int


class FolderLog:
    def __init__(self, database: Database) -> None:
        self.database = database

    async def record(
        self, tenant_id: str, collection_id: str, root: str, *, num_files: int,
        failed: list[tuple[str, str]],
    ) -> None:  # fmt: skip
        """The outcome of syncing ``root`` now."""
        mine = [(uri, why) for uri, why in failed if uri.startswith(root)]
        if not await asyncio.to_thread(os.path.isdir, root):
            status, message = "missing", "the folder no longer exists; its sources were removed"
        elif mine:
            status, message = "failed", f"{len(mine)} file(s) not indexed: {mine[0][1]}"
        else:
            status, message = "ok", ""
        now = now_ms()
        await self.database.execute(
            "INSERT INTO kb_folders (tenant_id, collection_id, root, added_at, last_sync_at,"
            " status, message, num_files) VALUES (:t, :c, :r, :now, :now, :s, :m, :n)"
            " ON CONFLICT (tenant_id, collection_id, root) DO UPDATE SET"
            " last_sync_at = excluded.last_sync_at, status = excluded.status,"
            " message = excluded.message, num_files = excluded.num_files",
            {"t": tenant_id, "c": collection_id, "r": root, "now": now, "s": status,
             "m": message, "n": num_files},
        )  # fmt: skip

    async def of(self, tenant_id: str, collection_id: str) -> list[Folder]:
        rows = await self.database.fetch_all(
            "SELECT * FROM kb_folders WHERE tenant_id = :t AND collection_id = :c ORDER BY root",
            {"t": tenant_id, "c": collection_id},
        )
        return [_folder(row) for row in rows]

    async def everywhere(self) -> list[Folder]:
        """Every folder of every tenant (the background syncer's work list)."""
        rows = await self.database.fetch_all("SELECT * FROM kb_folders ORDER BY tenant_id, root")
        return [_folder(row) for row in rows]

    async def forget(self, tenant_id: str, collection_id: str) -> None:
        await self.database.execute(
            "DELETE FROM kb_folders WHERE tenant_id = :t AND collection_id = :c",
            {"t": tenant_id, "c": collection_id},
        )


def _folder(row: dict[str, object]) -> Folder:
    last = row["last_sync_at"]
    return Folder(
        str(row["tenant_id"]), str(row["collection_id"]), str(row["root"]),
        int(str(row["added_at"])), int(str(last)) if last is not None else None,
        str(row["status"]), str(row["message"]), int(str(row["num_files"])),
    )  # fmt: skip
