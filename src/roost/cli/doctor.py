"""``roost doctor``: what this machine offers Roost, with loud warnings where it falls short."""

from __future__ import annotations

import shutil

import typer
from rich.table import Table

from roost.cli.common import console, err_console
from roost.cli.output import JsonOption, print_json


def doctor(as_json: JsonOption = False) -> None:
    """Check the tool sandbox's isolation (bubblewrap, process limits) and needed programs."""
    # Imported here: importing the tools package loads the tool layer (MCP SDK, storage).
    from roost.tools.isolation import detect_isolation

    isolation = detect_isolation()
    checks = {
        "sandbox isolation": isolation.level,
        "bubblewrap": isolation.bwrap_path,
        "process limit": isolation.process_limit,
        "resource limits (prlimit)": shutil.which("prlimit"),
        "git": shutil.which("git"),
    }
    if as_json:
        print_json({"checks": checks, "warnings": list(isolation.warnings)})
    else:
        table = Table("check", "status")
        for check, status in checks.items():
            table.add_row(check, status or "[bold red]missing[/]")
        console.print(table)
    for warning in isolation.warnings:
        err_console.print(f"[bold yellow]WARNING:[/] {warning}", highlight=False)
    if shutil.which("prlimit") is None:
        err_console.print("[bold red]ERROR:[/] prlimit (util-linux) is required to run commands")
        raise typer.Exit(1)
