"""Knowledge that stays fresh: folder-backed collections re-sync on an interval and as
soon as a file under them changes.

One :class:`KnowledgeSyncer` runs in the server (not in workers or CLI commands). It
syncs every collection with folders at start (changes made while the server was down),
then every ``interval_s``, and, with ``watch``, whenever watchfiles reports a change
under a folder (debounced, so saving a file twice syncs once). A sync is incremental by
content hash and propagates deletions (:meth:`KnowledgeBase.sync`), so a spurious wake-up
costs a directory walk and a hash per file. Syncs of one process never overlap; each
outcome is recorded per folder (``roost kb sources``).

The folder list is re-read every ``refresh_s``: a folder added through the API or the
CLI is watched from then on.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Awaitable, Callable

from roost.memory.knowledge import KnowledgeBase, SyncReport
from roost.memory.knowledge_folders import Folder
from roost.observe.logging import get_logger

log = get_logger("roost.memory.sync")
Synced = Callable[[str, str, SyncReport], None]  # tenant, collection id, outcome


class KnowledgeSyncer:
    def __init__(
        self,
        knowledge: KnowledgeBase,
        *,
        interval_s: float,
        watch: bool = True,
        refresh_s: float = 10.0,
        on_synced: Synced | None = None,
    ) -> None:
        self.knowledge = knowledge
        self.interval_s = interval_s
        self.watch = watch
        self.refresh_s = refresh_s
        self.on_synced = on_synced
        self.watching = asyncio.Event()  # set once the watcher runs over the current folders
        self.caught_up = asyncio.Event()  # set once the sync at start is done
        self._lock = asyncio.Lock()
        self._stopping = asyncio.Event()
        self._stop_watch = asyncio.Event()
        self._roots: dict[str, tuple[str, str]] = {}  # root -> tenant, collection id
        self._task: asyncio.Future[None] | None = None

    def start(self) -> None:
        self._task = asyncio.ensure_future(self.run())

    async def close(self, grace_s: float = 10.0) -> None:
        """Stop at the next wait. A sync under way may finish (up to ``grace_s``): cancelling
        a database call half-way can leave its connection unusable for the pool."""
        self._stopping.set()
        self._stop_watch.set()
        if self._task is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(self._task), grace_s)
        except TimeoutError:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def run(self) -> None:
        """Sync now, then on the interval and on changes, until :meth:`close`."""
        loops = [self._periodic()] + ([self._watch()] if self.watch else [])
        await asyncio.gather(*loops)

    async def sync_all(self) -> None:
        collections = {(f.tenant_id, f.collection_id) for f in await self._folders()}
        collections |= {
            (u.tenant_id, u.collection_id) for u in await self.knowledge.urls.everywhere()
        }
        for tenant_id, collection_id in sorted(collections):
            if self._stopping.is_set():
                return
            await self.sync(tenant_id, collection_id)

    async def sync(self, tenant_id: str, collection_id: str) -> None:
        async with self._lock:
            try:
                report = await self.knowledge.sync(tenant_id, collection_id)
            except Exception:  # one collection's failure must not stop the others' syncs
                log.exception(
                    "knowledge sync failed", tenant_id=tenant_id, collection=collection_id
                )
                return
        if report.added or report.updated or report.removed or report.failed:
            log.info(
                "knowledge synced", tenant_id=tenant_id, collection=collection_id,
                added=len(report.added), updated=len(report.updated),
                removed=len(report.removed), failed=len(report.failed),
            )  # fmt: skip
        if self.on_synced is not None:
            self.on_synced(tenant_id, collection_id, report)

    async def _folders(self) -> list[Folder]:
        return await self.knowledge.folders.everywhere()

    async def _periodic(self) -> None:
        await self._survive(self.sync_all)
        self.caught_up.set()
        since_sync = 0.0
        while not await self._stopped_within(self.refresh_s):
            since_sync += self.refresh_s
            await self._survive(self._refresh_roots)
            if self.interval_s > 0 and since_sync >= self.interval_s:
                since_sync = 0.0
                await self._survive(self.sync_all)

    async def _survive(self, step: Callable[[], Awaitable[None]]) -> None:
        """Run one round; a failure (the store briefly unreachable, say) is logged and the
        next round tries again, instead of ending syncing for the server's lifetime."""
        try:
            await step()
        except Exception:
            log.exception("knowledge sync round failed; retrying next round")

    async def _stopped_within(self, seconds: float) -> bool:
        """Wait for the next round; True when :meth:`close` was called meanwhile."""
        try:
            await asyncio.wait_for(self._stopping.wait(), seconds)
        except TimeoutError:
            return False
        return True

    async def _refresh_roots(self) -> None:
        folders = await self._folders()
        roots = {f.root: (f.tenant_id, f.collection_id) for f in folders}
        present = await asyncio.to_thread(
            lambda: {r: v for r, v in roots.items() if os.path.isdir(r)}
        )
        if present != self._roots:
            self._roots = present
            self._stop_watch.set()  # the watcher restarts over the new folders

    async def _watch(self) -> None:
        from watchfiles import awatch

        await self._survive(self._refresh_roots)
        while not self._stopping.is_set():
            self._stop_watch.clear()
            roots = dict(self._roots)
            if not roots:
                self.watching.set()
                await self._stop_watch.wait()
                continue
            self.watching.clear()
            # yield_on_timeout: the first (empty) yield proves the watcher is running.
            async for changes in awatch(
                *roots, stop_event=self._stop_watch, rust_timeout=500, yield_on_timeout=True,
                debounce=400,
            ):  # fmt: skip
                self.watching.set()
                touched = {
                    owner
                    for _change, path in changes
                    for root, owner in roots.items()
                    if path == root or path.startswith(root.rstrip(os.sep) + os.sep)
                }
                for tenant_id, collection_id in sorted(touched):
                    await self.sync(tenant_id, collection_id)
