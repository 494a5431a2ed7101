"""``roost migrate-store``: move a home from SQLite to PostgreSQL (or back), counts verified.

Stop the server and workers first; the move refuses while runs are queued or running.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from roost.cli.common import console, err_console, settings_from


def migrate_store(
    ctx: typer.Context,
    to: Annotated[
        str, typer.Option("--to", help="Target: postgresql://… (or sqlite:///… to move back)")
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """Copy every table, the thread checkpoints and the vectors into an empty target."""
    import asyncio

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
    from rich.table import Table

    from roost.config import redact_url
    from roost.errors import RoostError
    from roost.platform.store_move import move_store

    settings = settings_from(ctx)
    with Progress(
        TextColumn("{task.description:<28}"), BarColumn(), MofNCompleteColumn(),
        console=err_console, disable=as_json,
    ) as progress:  # fmt: skip
        tasks: dict[str, Any] = {}

        def step(name: str, done: int, total: int) -> None:
            if name not in tasks:
                tasks[name] = progress.add_task(name, total=max(total, 1))
            progress.update(tasks[name], completed=done, total=max(total, 1))

        try:
            report = asyncio.run(move_store(settings, to, step))
        except RoostError as exc:
            err_console.print(f"[bold red]error:[/] {exc.message}", highlight=False)
            raise typer.Exit(1) from exc
    target = redact_url(to)
    if as_json:
        counts = {t: {"source": a, "target": b} for t, (a, b) in report.counts.items()}
        console.print_json(data={"target": target, "counts": counts, "notes": report.notes})
        return
    table = Table("table", "rows here", "rows there")
    for name, (here, there) in report.counts.items():
        table.add_row(name, str(here), str(there))
    console.print(table)
    for note in report.notes:
        console.print(note, highlight=False)
    console.print(
        f"[green]moved[/]: every count matches. Point this home at {target}: set"
        " storage.url in roost.toml (or ROOST_DATABASE_URL), then start Roost.",
        highlight=False,
    )
