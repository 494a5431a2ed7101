"""``roost serve``: check storage, set up the default tenant, then serve HTTP."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from roost.cli.common import console, err_console, settings_from, with_platform

if TYPE_CHECKING:
    from roost.config import Settings
    from roost.platform import BootstrapReport


def serve(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option(help="Address to listen on")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on")] = None,
) -> None:
    """Start the Roost server (embedded SQLite under ROOST_HOME unless configured otherwise)."""
    # Imported here: the server loads the engine, DBOS and the MCP SDK; other commands do not.
    import uvicorn

    from roost.observe.logging import configure_logging
    from roost.platform import bootstrap
    from roost.server.app import create_app

    settings = settings_from(ctx)
    if host is not None:
        settings.server.host = host
    if port is not None:
        settings.server.port = port
    # Fail fast, before binding a port, when storage is unreachable.
    report = with_platform(settings, bootstrap)
    _print_banner(settings, report)
    configure_logging(settings.logging)
    uvicorn.run(
        create_app(settings),
        host=settings.server.host,
        port=settings.server.port,
        log_config=None,
        timeout_graceful_shutdown=10,
    )


def _print_banner(settings: Settings, report: BootstrapReport) -> None:
    from roost.config import redact_url

    url = f"http://{settings.server.host}:{settings.server.port}"
    console.print(f"[bold]Roost[/] listening on [cyan]{url}[/]", highlight=False)
    console.print(f"  web UI:   {url}/ui  (sign in with an API key; API docs at {url}/docs)",
                  highlight=False)  # fmt: skip
    console.print(f"  data:     {settings.home}", highlight=False)
    console.print(f"  database: {redact_url(settings.database_url)}", highlight=False)
    if report.created_key:
        console.print(
            "  operator API key, owner of tenant 'default' (shown once; only its hash is stored):",
            highlight=False,
        )
        console.print(f"    [bold green]{report.created_key}[/]", highlight=False, soft_wrap=True)
    _print_sandbox(settings)
    if settings.auth.mode == "disabled":
        err_console.print(
            "[bold red]WARNING: authentication is disabled (ROOST_AUTH=disabled);"
            " every request acts for the default tenant.[/]"
        )


def _print_sandbox(settings: Settings) -> None:
    """Say at start-up whether tools can run commands, and exactly what is missing if not."""
    from roost.tools.isolation import INSTALL_HINT, detect_isolation

    tools = settings.tools
    isolation = detect_isolation(tools.command_uid)
    if isolation.jail is not None:
        console.print("  commands: bubblewrap jail (no network)", highlight=False)
    elif tools.allow_unjailed_commands:
        err_console.print(
            f"[bold red]WARNING: no bubblewrap jail ({isolation.jail_problem}) and"
            " tools.allow_unjailed_commands is set: tenants' commands run UNJAILED.[/]",
            highlight=False,
        )
    else:
        err_console.print(
            f"[bold yellow]  commands: REFUSED, no bubblewrap jail ({isolation.jail_problem})."
            f" To fix: {INSTALL_HINT}[/]",
            highlight=False,
        )
