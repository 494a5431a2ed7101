"""Group commit for the per-call writes (usage record, budget settlement).

Every call waits until its own rows are committed, so usage is on record when the call
returns; but calls that finish while a commit is in flight share the next transaction.
Without this, 100 concurrent gateway calls queued 100 transactions on SQLite's single
write lock, and past the busy timeout the late ones failed with "database is locked"
after their answer had already been paid for.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncConnection

from roost.storage import Database

Write = Callable[[AsyncConnection], Awaitable[None]]


class GroupCommitter:
    """Runs writes inside shared transactions, one writer task at a time."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self.num_commits = 0
        self._queue: list[tuple[Write, asyncio.Future[None]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def run(self, write: Write) -> None:
        """Run ``write`` in a transaction shared with other waiting writes; return once it
        is committed, or raise what it (or its transaction) raised."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append((write, done))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.ensure_future(self._drain())
        # A caller that stops waiting cancels only ``done``: its write stays queued, so the
        # usage still counts.
        await done

    async def aclose(self) -> None:
        """Wait for queued writes to be committed."""
        if self._writer is not None:
            await asyncio.shield(self._writer)

    async def _drain(self) -> None:
        batch: list[tuple[Write, asyncio.Future[None]]] = []
        try:
            while self._queue:
                batch, self._queue = self._queue, []
                try:
                    await self._commit(batch)
                except Exception as exc:
                    if len(batch) == 1:
                        _settle(batch[0][1], exc)
                        continue
                    # One failing write must not lose the others: commit each on its own.
                    for item in batch:
                        try:
                            await self._commit([item])
                        except Exception as own:
                            _settle(item[1], own)
                        else:
                            _settle(item[1], None)
                else:
                    for _, done in batch:
                        _settle(done, None)
        except BaseException:  # cancelled at shutdown: nobody may wait forever
            for _, done in [*batch, *self._queue]:
                done.cancel()
            self._queue = []
            raise

    async def _commit(self, batch: list[tuple[Write, asyncio.Future[None]]]) -> None:
        async with self.database.transaction() as conn:
            for write, _ in batch:
                await write(conn)
        self.num_commits += 1


def _settle(done: asyncio.Future[None], error: BaseException | None) -> None:
    if done.done():
        return
    if error is None:
        done.set_result(None)
    else:
        done.set_exception(error)
