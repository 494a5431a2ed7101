"""``roost config show|check``."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from roost.cli.common import console, settings_from
from roost.cli.output import print_json

app = typer.Typer(help="Inspect and validate configuration.", no_args_is_help=True)


@app.command()
def show(
    ctx: typer.Context,
    as_json: Annotated[
        bool, typer.Option("--json", help="JSON (the only format; for scripts)")
    ] = True,
) -> None:
    """Print the effective configuration (secrets masked) as JSON."""
    settings = settings_from(ctx)
    data = json.loads(settings.model_dump_json())
    data["database_url"] = settings.database_url
    print_json(data)


@app.command()
def check(ctx: typer.Context) -> None:
    """Validate configuration; exit 2 listing every problem with its key and reason."""
    settings = settings_from(ctx)
    console.print(f"[green]configuration OK[/] (data in {settings.home})")
