"""What every command needs: settings loaded or a clear list of problems, and the platform.

Imports here stay light: every ``roost`` invocation loads this module, so the platform
(storage, SQLAlchemy) is imported only by the commands that open it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import typer
from rich.console import Console

from roost.errors import ConfigError, RoostError

if TYPE_CHECKING:
    from roost.config import Settings
    from roost.platform import Platform

T = TypeVar("T")
console = Console()
err_console = Console(stderr=True)


def settings_from(ctx: typer.Context) -> Settings:
    """Settings for this invocation; exits 2 listing every problem when they are invalid."""
    from roost.config import load_settings

    config_file: Path | None = (ctx.obj or {}).get("config_file")
    try:
        return load_settings(config_file)
    except ConfigError as exc:
        report_config_error(exc)
        raise typer.Exit(2) from exc


def report_config_error(exc: ConfigError) -> None:
    err_console.print(f"[bold red]Invalid configuration[/] ({len(exc.problems)} problem(s)):")
    for key, reason in exc.problems:
        err_console.print(f"  [bold]{key}[/]: {reason}", highlight=False)


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
        err_console.print(f"[bold red]error:[/] {exc.message}", highlight=False)
        raise typer.Exit(1) from exc


def format_time(epoch_ms: int | None) -> str:
    """An epoch-milliseconds timestamp as UTC text, or '-' when absent."""
    if epoch_ms is None:
        return "-"
    return datetime.fromtimestamp(epoch_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
