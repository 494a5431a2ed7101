"""Scheduled backups: due by the age of the newest scheduled archive, pruned to ``keep``,
and started by the server's kernel."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

from roost.backup.catalog import list_archives
from roost.backup.schedule import run_if_due
from roost.config import load_settings
from tests.server.conftest import AppFactory

DAY = 86_400.0


def test_backups_are_made_when_due_and_pruned_to_keep(roost_home: Path) -> None:
    settings = load_settings(
        env={"ROOST_HOME": str(roost_home), "ROOST_BACKUP__EVERY": "24h", "ROOST_BACKUP__KEEP": "2"}
    )
    start = time.time()
    assert run_if_due(settings, now=start) == DAY
    # Not due an hour later: the next one is due when the newest turns a day old.
    wait = run_if_due(settings, now=start + 3600)
    assert abs(wait - (DAY - 3600)) < 60
    assert len(list_archives(roost_home / "backups")) == 1

    for days in (1.1, 2.2, 3.3):
        assert run_if_due(settings, now=start + days * DAY) == DAY
        # Files are stamped now, not in the test's future: stand in for the time passing.
        newest = list_archives(roost_home / "backups")[0].path
        stamp = start + days * DAY
        os.utime(newest, (stamp, stamp))
    kept = list_archives(roost_home / "backups")
    assert len(kept) == 2 and all(a.id.endswith("-scheduled") for a in kept)


def test_the_server_makes_the_first_scheduled_backup_at_start(
    make_app: AppFactory, roost_home: Path
) -> None:
    async def serve() -> None:
        async with make_app(env={"ROOST_BACKUP__EVERY": "24h"}) as (app, _):
            # The first backup is due at once: the server's first round makes it.
            await asyncio.wait_for(app.state.kernel.backup_ran.wait(), 120)

    asyncio.run(serve())
    (archive,) = list_archives(roost_home / "backups")
    assert archive.manifest is not None and archive.manifest.label == "scheduled"
