"""``roost doctor``: what this machine offers Roost, with loud warnings where it falls short."""

from __future__ import annotations

import shutil

import typer
from rich.table import Table

from roost.cli.common import console, err_console, settings_from


def doctor(ctx: typer.Context) -> None:
    """Check the tool sandbox's jail (bubblewrap, user namespaces, process limits) and programs.

    Exits 1 when commands cannot run: no working jail (and no operator opt-out) or no prlimit.
    """
    # Imported here: importing the tools package loads the tool layer (MCP SDK, storage).
    from roost.tools import isolation as probe

    tools = settings_from(ctx).tools
    isolation = probe.detect_isolation(tools.command_uid)
    table = Table("check", "status")
    if isolation.jail is not None:
        table.add_row("sandbox jail", "bubblewrap (user, pid, net, mount namespaces)")
    elif tools.allow_unjailed_commands:
        table.add_row("sandbox jail", "[bold red]none: commands run UNJAILED (operator opt-in)[/]")
    else:
        table.add_row("sandbox jail", "[bold red]none: commands are refused[/]")
    table.add_row(
        "bubblewrap", isolation.bwrap_path or f"[bold red]missing[/] ({isolation.jail_problem})"
    )
    if isolation.is_root and isolation.jail is not None:
        table.add_row("commands run as", f"host uid {tools.command_uid} (dropped from root)")
    table.add_row("process limit", isolation.process_limit)
    table.add_row("resource limits (prlimit)", shutil.which("prlimit") or "[bold red]missing[/]")
    table.add_row("git", shutil.which("git") or "missing (git tools fail)")
    console.print(table)
    for warning in isolation.warnings:
        err_console.print(f"[bold yellow]WARNING:[/] {warning}", highlight=False)
    failed = False
    if shutil.which("prlimit") is None:
        err_console.print("[bold red]ERROR:[/] prlimit (util-linux) is required to run commands")
        failed = True
    if isolation.jail is None and not tools.allow_unjailed_commands:
        err_console.print(
            f"[bold red]ERROR:[/] tools cannot run commands. To fix: {probe.INSTALL_HINT}",
            highlight=False,
        )
        failed = True
    if failed:
        raise typer.Exit(1)
