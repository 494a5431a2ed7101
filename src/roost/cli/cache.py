"""``roost cache``: see and manage the per-session KV caches of a running server."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Column, Table

from roost.cli.common import console, format_time, settings_from
from roost.cli.server_client import ApiKeyOption, UrlOption, check, server_client, unreachable

_SHOWN_ID = 16  # characters of a cache id in tables: unique in practice, accepted as a prefix
app = typer.Typer(help="Per-session KV caches (hot, warm, cold) of a running server.")


def _call(ctx: typer.Context, url: str | None, api_key: str | None, method: str, path: str) -> Any:
    import httpx

    client = server_client(settings_from(ctx), url, api_key)
    try:
        with client:
            return check(client.request(method, path))
    except httpx.HTTPError as exc:
        raise unreachable(client, exc) from exc


def _size(nbytes: int) -> str:
    value = float(nbytes)
    for unit in ("B", "KiB", "MiB"):
        if value < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


def _print(listing: dict[str, Any]) -> None:
    # The id is what `warm` and `clear` take: never shortened by a narrow terminal.
    shown_id = Column("id", no_wrap=True, min_width=_SHOWN_ID)
    table = Table(shown_id, "tenant", "session", "tier", "tokens", "size", "last used")
    for row in listing["data"]:
        table.add_row(
            row["id"][:_SHOWN_ID],
            row["tenant_id"],
            row["session_id"],
            row["tier"],
            str(row["num_tokens"]),
            _size(row["nbytes"]),
            format_time(row["last_used_ms"]),
        )
    console.print(table)
    totals = ", ".join(
        f"{tier}: {t['sessions']} ({_size(t['bytes'])})" for tier, t in listing["totals"].items()
    )
    console.print(totals, highlight=False)


@app.command("stats")
def stats(
    ctx: typer.Context,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """List every session cache with its tier, size and last use."""
    listing = _call(ctx, url, api_key, "GET", "/admin/caches")
    if as_json:
        console.print_json(data=listing)
    else:
        _print(listing)


@app.command("clear")
def clear(
    ctx: typer.Context,
    cache_id: Annotated[str | None, typer.Argument(help="One cache id (default: --all)")] = None,
    all_caches: Annotated[bool, typer.Option("--all", help="Clear every session cache")] = False,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """Delete one session cache, or all of them with --all."""
    if (cache_id is None) == (not all_caches):
        raise typer.BadParameter("give a cache id or --all (not both)")
    if cache_id is not None:
        ids = [_resolve(ctx, url, api_key, cache_id)]
    else:
        ids = [row["id"] for row in _call(ctx, url, api_key, "GET", "/admin/caches")["data"]]
    for full_id in ids:
        _call(ctx, url, api_key, "DELETE", f"/admin/caches/{full_id}")
    console.print(f"cleared {len(ids)} session cache(s)")


@app.command("warm")
def warm(
    ctx: typer.Context,
    cache_id: Annotated[str, typer.Argument(help="Cache id (or a unique prefix of it)")],
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """Load a cache from disk into memory before its session returns."""
    full_id = _resolve(ctx, url, api_key, cache_id)
    row = _call(ctx, url, api_key, "POST", f"/admin/caches/{full_id}/warm")
    console.print(f"{full_id[:_SHOWN_ID]} is {row['tier']} ({row.get('num_tokens', 0)} tokens)")


@app.command("offload")
def offload(ctx: typer.Context, url: UrlOption = None, api_key: ApiKeyOption = None) -> None:
    """Write every hot and warm cache to disk and free its memory."""
    _print(_call(ctx, url, api_key, "POST", "/admin/caches/offload"))


def _resolve(ctx: typer.Context, url: str | None, api_key: str | None, prefix: str) -> str:
    """Accept the shortened ids that ``stats`` prints."""
    ids = [row["id"] for row in _call(ctx, url, api_key, "GET", "/admin/caches")["data"]]
    matches = [i for i in ids if i.startswith(prefix)]
    if len(matches) != 1:
        raise typer.BadParameter(f"{prefix!r} matches {len(matches)} caches", param_hint="cache_id")
    return matches[0]
