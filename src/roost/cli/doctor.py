"""``roost doctor``: what this machine offers Roost, with loud warnings where it falls short."""

from __future__ import annotations

import shutil

import typer
from rich.table import Table

from roost.cli.common import console, err_console


def doctor() -> None:
    """Check the tool sandbox's isolation (bubblewrap, process limits) and needed programs."""
    # Imported here: importing the tools package loads the tool layer (MCP SDK, storage).
    from roost.tools.isolation import detect_isolation

    isolation = detect_isolation()
    table = Table("check", "status")
    table.add_row("sandbox isolation", isolation.level)
    table.add_row("bubblewrap", isolation.bwrap_path or "[bold red]missing[/]")
    table.add_row("process limit", isolation.process_limit)
    table.add_row("resource limits (prlimit)", shutil.which("prlimit") or "[bold red]missing[/]")
    table.add_row("git", shutil.which("git") or "missing (git tools fail)")
    console.print(table)
    for warning in isolation.warnings:
        err_console.print(f"[bold yellow]WARNING:[/] {warning}", highlight=False)
    if shutil.which("prlimit") is None:
        err_console.print("[bold red]ERROR:[/] prlimit (util-linux) is required to run commands")
        raise typer.Exit(1)
