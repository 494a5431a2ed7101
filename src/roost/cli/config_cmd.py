"""``roost config show|check``."""

from __future__ import annotations

import json

import typer

from roost.cli.common import console, settings_from

app = typer.Typer(help="Inspect and validate configuration.", no_args_is_help=True)


@app.command()
def show(ctx: typer.Context) -> None:
    """Print the effective configuration (secrets masked) as JSON."""
    settings = settings_from(ctx)
    data = json.loads(settings.model_dump_json())
    data["database_url"] = settings.database_url
    console.print_json(data=data)


@app.command()
def check(ctx: typer.Context) -> None:
    """Validate configuration; exit 2 listing every problem with its key and reason."""
    settings = settings_from(ctx)
    console.print(f"[green]configuration OK[/] (data in {settings.home})")
