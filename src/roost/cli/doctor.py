"""``roost doctor``: what this machine offers Roost, with loud warnings where it falls short."""

from __future__ import annotations

import shutil

import typer
from rich.markup import escape
from rich.table import Table

from roost.cli.common import console, err_console, settings_from
from roost.cli.output import JsonOption, print_json


def doctor(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Check the tool sandbox's jail (bubblewrap, user namespaces, process limits) and programs.

    Exits 1 when commands cannot run: no working jail (and no operator opt-out) or no
    ``/bin/sh`` (its ``ulimit`` sets the commands' resource limits).
    """
    # Imported here: importing the tools package loads the tool layer (MCP SDK, storage).
    from roost.tools import isolation as probe

    tools = settings_from(ctx).tools
    isolation = probe.detect_isolation(tools.command_uid)
    # check -> (status, is it a failure); one list for the table and for --json.
    checks: dict[str, tuple[str, bool]] = {}
    if isolation.jail is not None:
        checks["sandbox jail"] = ("bubblewrap (user, pid, net, mount namespaces)", False)
    elif tools.allow_unjailed_commands:
        checks["sandbox jail"] = ("none: commands run UNJAILED (operator opt-in)", True)
    else:
        checks["sandbox jail"] = ("none: commands are refused", True)
    checks["bubblewrap"] = (
        (isolation.bwrap_path, False)
        if isolation.bwrap_path
        else (f"missing ({isolation.jail_problem})", True)
    )
    if isolation.is_root and isolation.jail is not None:
        checks["commands run as"] = (f"host uid {tools.command_uid} (dropped from root)", False)
    checks["process limit"] = (isolation.process_limit, False)
    shell = shutil.which("sh", path="/bin")
    checks["resource limits (ulimit)"] = (shell, False) if shell else ("/bin/sh missing", True)
    git = shutil.which("git")
    checks["git"] = (git, False) if git else ("missing (git tools fail)", False)
    if as_json:
        print_json({"checks": {name: status for name, (status, _) in checks.items()},
                    "warnings": list(isolation.warnings)})  # fmt: skip
    else:
        table = Table("check", "status")
        for name, (status, is_failure) in checks.items():
            table.add_row(name, f"[bold red]{escape(status)}[/]" if is_failure else escape(status))
        console.print(table)
    for warning in isolation.warnings:
        err_console.print(f"[bold yellow]WARNING:[/] {warning}", highlight=False)
    failed = False
    if shell is None:
        err_console.print("[bold red]ERROR:[/] /bin/sh is required to set commands' limits")
        failed = True
    if isolation.jail is None and not tools.allow_unjailed_commands:
        err_console.print(
            f"[bold red]ERROR:[/] tools cannot run commands. To fix: {probe.INSTALL_HINT}",
            highlight=False,
        )
        failed = True
    if failed:
        raise typer.Exit(1)
