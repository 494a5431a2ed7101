"""``roost worker``: a process that opens the platform kernel and executes runs (agent,
graph and coordinator runs) from the shared queue until stopped.

Run several beside ``roost serve`` with ``runs.workers = 0`` on one PostgreSQL database:
servers enqueue, workers execute, and a worker that dies has its runs taken over by
another. A worker that cannot reach the database exits 1 naming it (password
redacted); whatever it had claimed is recovered when a worker next starts.
"""

from __future__ import annotations

import asyncio
import signal
from typing import Annotated

import typer

from roost.cli.common import err_console, settings_from


def worker(
    ctx: typer.Context,
    concurrency: Annotated[
        int | None,
        typer.Option(
            min=1, max=256, help="runs executed at once (default: agents.worker_concurrency)"
        ),
    ] = None,
) -> None:
    """Execute runs from the shared queue until stopped (Ctrl-C / SIGTERM)."""
    from roost.errors import RoostError

    settings = settings_from(ctx)
    try:
        asyncio.run(_serve_runs(settings, concurrency or settings.agents.worker_concurrency))
    except RoostError as exc:
        err_console.print(f"[bold red]error:[/] {exc.message}", highlight=False)
        raise typer.Exit(1) from exc


async def _serve_runs(settings: object, concurrency: int) -> None:
    from roost.config import Settings, redact_url
    from roost.platform.kernel import Roost, RunExecution

    assert isinstance(settings, Settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    kernel = await Roost.open(settings, execution=RunExecution(concurrency, eager=True))
    try:
        print(
            f"roost worker {kernel.runs.executor_id} ready: {concurrency} run(s) at once,"
            f" database {redact_url(settings.database_url)}",
            flush=True,
        )
        await stop.wait()
    finally:
        await kernel.close()
