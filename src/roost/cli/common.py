"""What every command needs: settings loaded or a clear list of problems, and the kernel.

Imports here stay light: every ``roost`` invocation loads this module, so the platform
(storage, SQLAlchemy) is imported only by the commands that open it.

Exit codes, the same for every command: 0 success; 1 the command failed (a Roost error,
an unreachable server, a tool or run that did not succeed); 2 bad usage or invalid
configuration (an unknown option, a bad value, an invalid ``roost.toml``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from roost.errors import ConfigError, RoostError

if TYPE_CHECKING:
    from roost.config import Settings
    from roost.platform import Platform, Roost

T = TypeVar("T")
console = Console()
err_console = Console(stderr=True)


def settings_from(ctx: typer.Context) -> Settings:
    """Settings for this invocation; exits 2 listing every problem when they are invalid."""
    from roost.config import load_settings

    config_file: Path | None = (ctx.obj or {}).get("config_file")
    try:
        return load_settings(config_file, warn=warn)
    except ConfigError as exc:
        report_config_error(exc)
        raise typer.Exit(2) from exc


def report_config_error(exc: ConfigError) -> None:
    err_console.print(f"[bold red]Invalid configuration[/] ({len(exc.problems)} problem(s)):")
    for key, reason in exc.problems:
        err_console.print(f"  [bold]{escape(key)}[/]: {escape(reason)}", highlight=False)


def warn(message: str) -> None:
    err_console.print(
        f"[bold yellow]warning:[/] {escape(message)}", highlight=False, soft_wrap=True
    )


def fail(message: str, *, code: int = 1) -> NoReturn:
    """Print ``message`` as an error (brackets shown as written) and exit ``code``."""
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def with_kernel(settings: Settings, work: Callable[[Roost], Awaitable[T]]) -> T:
    """Open the kernel for one command (no local model, no run execution: see
    :meth:`Roost.open_for_command`), run ``work`` on it, close it; a Roost error exits 1
    with its message, and every problem it lists."""
    from roost.platform import Roost

    _quiet_logging(settings)

    async def run() -> T:
        kernel = await Roost.open_for_command(settings)
        try:
            return await work(kernel)
        finally:
            await kernel.close()

    try:
        return asyncio.run(run())
    except RoostError as exc:
        report_error(exc)
        raise typer.Exit(1) from exc


def report_error(exc: RoostError) -> None:
    print_problems(exc.message, exc.extra.get("errors") or [])


def print_problems(message: str, errors: list[dict[str, str]]) -> None:
    """An error, or, when it lists several problems, its headline and one line each."""
    if errors:
        message = message.split(": ", 1)[0] + ":"
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    for problem in errors:
        where = f"{problem['loc']}: " if problem.get("loc") else ""
        err_console.print(
            f"  {escape(where + str(problem.get('message')))}", highlight=False, soft_wrap=True
        )


def _quiet_logging(settings: Settings) -> None:
    """Services log to stderr, warnings and worse only: stdout is the command's output."""
    from roost.config import LoggingSettings
    from roost.observe.logging import configure_logging

    level = "debug" if settings.logging.level == "debug" else "warning"
    configure_logging(LoggingSettings(level=level, format="console"))


def with_platform(settings: Settings, work: Callable[[Platform], Awaitable[T]]) -> T:
    """Open the platform, run ``work`` on it, close it; exit 1 with the message on a Roost error."""
    from roost.platform import Platform

    async def run() -> T:
        platform = await Platform.open(settings)
        try:
            return await work(platform)
        finally:
            await platform.close()

    try:
        return asyncio.run(run())
    except RoostError as exc:
        report_error(exc)
        raise typer.Exit(1) from exc


def format_time(epoch_ms: int | None) -> str:
    """An epoch-milliseconds timestamp as UTC text, or '-' when absent."""
    if epoch_ms is None:
        return "-"
    return datetime.fromtimestamp(epoch_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
