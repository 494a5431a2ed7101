"""``roost worker``: a process that claims graph runs from the durable queue and runs them."""

from __future__ import annotations

import socket
from typing import Annotated

import typer

from roost.cli.common import settings_from


def worker(
    ctx: typer.Context,
    graphs: Annotated[
        str, typer.Option(help="module:attribute naming a dict of compiled graphs (or a function)")
    ],
    db: Annotated[
        str | None,
        typer.Option(help="queue database URL (default: sqlite under ROOST_HOME/runs.db)"),
    ] = None,
    concurrency: Annotated[int, typer.Option(min=1, help="runs executed at once")] = 4,
    executor_id: Annotated[
        str | None,
        typer.Option(help="stable id of this worker; one per live process (default: host name)"),
    ] = None,
    recover: Annotated[
        list[str] | None, typer.Option(help="take over the runs of this dead worker id")
    ] = None,
) -> None:
    """Run graph runs from the queue until stopped (Ctrl-C / SIGTERM)."""
    from roost.runs.worker import main as run_worker

    settings = settings_from(ctx)
    argv = [
        "--graphs", graphs,
        "--db", db or f"sqlite:///{settings.home / 'runs.db'}",
        "--concurrency", str(concurrency),
        "--executor-id", executor_id or socket.gethostname(),
    ]  # fmt: skip
    for dead in recover or []:
        argv += ["--recover", dead]
    run_worker(argv)
