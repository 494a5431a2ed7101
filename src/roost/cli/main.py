"""Entry point of the ``roost`` command."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from roost import __version__
from roost.cli import (
    agents,
    approvals,
    audit,
    backup,
    cache,
    code,
    config_cmd,
    datasets,
    doctor,
    evals,
    experiments,
    kb,
    kb_sources,
    keys,
    limits,
    mcp,
    memory,
    migrate_store,
    models,
    monitor,
    prompts,
    secrets,
    serve,
    tenants,
    tools,
    traces,
    worker,
)
from roost.cli import usage as usage_cmd

app = typer.Typer(
    name="roost",
    help="Roost: a self-hosted agent platform whose agents remember.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)


@app.callback()
def main(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config", "-c", help="roost.toml to read (default: ./roost.toml, $ROOST_HOME)"
        ),
    ] = None,
) -> None:
    ctx.obj = {"config_file": config}


@app.command()
def version() -> None:
    """Print Roost's version."""
    typer.echo(__version__)


app.command()(serve.serve)
app.command()(worker.worker)
app.command("code")(code.code)
app.command()(monitor.monitor)
app.add_typer(config_cmd.app, name="config")
app.add_typer(keys.app, name="keys")
app.add_typer(tenants.app, name="tenants")
app.add_typer(kb.app, name="kb")
kb.app.command("sources")(kb_sources.sources)  # in its own module: see kb_sources.py
app.add_typer(memory.app, name="memory")
app.add_typer(tools.app, name="tools")
app.add_typer(approvals.app, name="approvals")
app.add_typer(audit.app, name="audit")
app.add_typer(secrets.app, name="secrets")
app.add_typer(agents.app, name="agents")
app.add_typer(mcp.app, name="mcp")
app.add_typer(models.app, name="models")
app.add_typer(cache.app, name="cache")
app.add_typer(limits.app, name="limits")
app.add_typer(traces.app, name="traces")
app.add_typer(prompts.app, name="prompts")
app.add_typer(datasets.app, name="datasets")
app.add_typer(evals.app, name="evals")
app.add_typer(experiments.app, name="experiments")
app.add_typer(backup.app, name="backup")
app.command("migrate-store")(migrate_store.migrate_store)
app.command()(doctor.doctor)
app.command("usage")(usage_cmd.usage)


if __name__ == "__main__":  # `python -m roost.cli.main`, same as the `roost` script
    app()
