"""``roost cache``: every cache by kind (the cache manager), and the per-session KV caches
of a running server one by one.

``stats`` and ``clear`` ask the running server (which sees every kind, including those in
its memory); when none answers they work on storage alone: KV files on disk, the response
cache in the database or Redis, the embedding cache."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Column, Table

from roost.cli.common import console, format_time, settings_from, with_platform
from roost.cli.server_client import ApiKeyOption, UrlOption, check, server_client, unreachable

_SHOWN_ID = 16  # characters of a cache id in tables: unique in practice, accepted as a prefix
app = typer.Typer(
    help="Every cache by kind (kv, prompt, response, embeddings, vectors): stats, clear;"
    " per-session KV caches: sessions, warm, offload."
)
KindOption = Annotated[
    str | None,
    typer.Option("--kind", help="kv, prompt, response, embeddings or vectors (default: all)"),
]
TenantOption = Annotated[str | None, typer.Option("--tenant", help="Tenant name or id")]
OfflineOption = Annotated[
    bool, typer.Option("--offline", help="Do not ask a server: storage alone (no server running)")
]


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
    kind: KindOption = None,
    tenant: TenantOption = None,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
    offline: OfflineOption = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """Every cache by kind: entries, size, where it lives, its eviction policy."""
    query = {k: v for k, v in (("kind", kind), ("tenant", tenant)) if v is not None}
    reports, source = _manage(ctx, url, api_key, offline, "stats", query)
    if as_json:
        console.print_json(data={"object": "list", "source": source, "data": reports})
        return
    table = Table("kind", "entries", "size", "where", "eviction", "notes")
    for r in reports:
        notes = ", ".join(f"{k} {v}" for k, v in r["detail"].items() if k != "tiers")
        tiers = r["detail"].get("tiers", {})
        notes = "; ".join(
            part for part in (
                ", ".join(f"{t} {v['entries']}" for t, v in tiers.items()), notes, r["note"]
            ) if part
        )  # fmt: skip
        table.add_row(
            r["kind"], str(r["entries"]), _size(r["bytes"]), r["where"] or "-", r["policy"], notes
        )
    console.print(table)
    console.print(f"({source})", highlight=False)


@app.command("clear")
def clear(
    ctx: typer.Context,
    cache_id: Annotated[
        str | None, typer.Argument(help="One session cache id (see `roost cache sessions`)")
    ] = None,
    kind: KindOption = None,
    tenant: TenantOption = None,
    all_caches: Annotated[bool, typer.Option("--all", help="Every kind, every tenant")] = False,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
    offline: OfflineOption = False,
) -> None:
    """Clear caches: one session's KV cache by id, or by --kind and/or --tenant, or --all."""
    if cache_id is not None:
        if kind or tenant or all_caches:
            raise typer.BadParameter("give a session cache id, or --kind/--tenant/--all")
        full_id = _resolve(ctx, url, api_key, cache_id)
        _call(ctx, url, api_key, "DELETE", f"/admin/caches/{full_id}")
        console.print("cleared 1 session cache(s)")
        return
    if not (kind or tenant or all_caches):
        raise typer.BadParameter("say what to clear: --kind, --tenant or --all")
    body = {"kind": kind, "tenant": tenant}
    reports, source = _manage(ctx, url, api_key, offline, "clear", body)
    for r in reports:
        line = f"{r['kind']}: cleared {r['entries']}"
        console.print(line + (f" ({r['note']})" if r["note"] else ""), highlight=False)
    console.print(f"({source})", highlight=False)


@app.command("sessions")
def sessions(
    ctx: typer.Context,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """List every session KV cache of the running server: tier, size, last use."""
    listing = _call(ctx, url, api_key, "GET", "/admin/caches")
    if as_json:
        console.print_json(data=listing)
    else:
        _print(listing)


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


def _manage(
    ctx: typer.Context,
    url: str | None,
    api_key: str | None,
    offline: bool,
    action: str,
    args: dict[str, Any],
) -> tuple[list[dict[str, Any]], str]:
    """Reports from the running server, or from storage when none answers (or --offline)."""
    import httpx

    settings = settings_from(ctx)
    if not offline:
        client = server_client(settings, url, api_key)
        try:
            with client:
                if action == "stats":
                    response = client.get("/admin/cache", params=args)
                else:
                    response = client.post("/admin/cache/clear", json=args)
                return check(response)["data"], f"from the server at {client.base_url}"
        except httpx.ConnectError as exc:
            if url is not None:
                raise unreachable(client, exc) from exc
    return _offline(settings, action, args), "no server answered: storage alone"


def _offline(settings: Any, action: str, args: dict[str, Any]) -> list[dict[str, Any]]:
    from roost.platform.cache_kinds import stored_caches
    from roost.platform.caches import resolve_tenant
    from roost.platform.schema import migrate_all

    async def work(platform: Any) -> list[dict[str, Any]]:
        await migrate_all(platform.database)  # the cache tables exist before a first serve
        manager = stored_caches(settings, platform)
        tenant_id = await resolve_tenant(platform.tenants, args.get("tenant"))
        run = manager.stats if action == "stats" else manager.clear
        reports = [r.to_dict() for r in await run(args.get("kind"), tenant_id)]
        if action != "stats":  # a deletion of cached data: audited (the server's is by HTTP)
            await platform.audit.record(
                tenant_id or await platform.default_tenant_id(), "cli", "cache.clear",
                target=args.get("kind") or "all",
                details={"tenant_id": tenant_id, "all_tenants": tenant_id is None},
            )  # fmt: skip
        return reports

    return with_platform(settings, work)
