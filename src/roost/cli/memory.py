"""``roost memory search|list``: an agent's long-term memory from the command line."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from roost.cli.common import console, format_time, settings_from, with_platform
from roost.errors import NotFound

if TYPE_CHECKING:
    from roost.memory.long_term import Memory, Recalled
    from roost.memory.service import MemoryServices
    from roost.platform import Platform

app = typer.Typer(help="Long-term memory of agents: search and list.", no_args_is_help=True)
AgentOpt = Annotated[str, typer.Option("--agent", "-a", help="Agent id")]
TenantOpt = Annotated[str, typer.Option("--tenant", help="Tenant name")]


@asynccontextmanager
async def open_memory(platform: Platform) -> AsyncIterator[MemoryServices]:
    # Imported here: memory loads embedders (sentence-transformers, torch) on demand.
    from roost.memory.service import MemoryServices

    memory = await MemoryServices.open(platform.settings, platform.database, platform.redis)
    try:
        yield memory
    finally:
        await memory.close()


async def tenant_id_of(platform: Platform, name: str) -> str:
    tenant = await platform.tenants.find_by_name(name)
    if tenant is None:
        raise NotFound(f"no tenant named {name!r}")
    return tenant.id


@app.command()
def search(
    ctx: typer.Context,
    query: str,
    agent: AgentOpt = "default",
    tenant: TenantOpt = "default",
    k: Annotated[int, typer.Option("-k", help="How many results")] = 5,
) -> None:
    """Memories of an agent ranked by relevance, recency and importance."""

    async def work(platform: Platform) -> list[Recalled]:
        async with open_memory(platform) as memory:
            return await memory.recall(await tenant_id_of(platform, tenant), agent, query, k=k)

    table = Table("score", "kind", "memory", "since", "source")
    for found in with_platform(settings_from(ctx), work):
        m = found.memory
        table.add_row(f"{found.score:.3f}", m.kind, m.text, format_time(m.valid_from),
                      str(m.source.get("thread_id", "")))  # fmt: skip
    console.print(table)


@app.command("list")
def list_memories(
    ctx: typer.Context, agent: AgentOpt = "default", tenant: TenantOpt = "default",
    all_versions: Annotated[bool, typer.Option("--all", help="Include superseded memories")] = False,
) -> None:  # fmt: skip
    """Current memories of an agent, oldest first."""

    async def work(platform: Platform) -> list[Memory]:
        async with open_memory(platform) as memory:
            return await memory.long_term.list_memories(
                await tenant_id_of(platform, tenant), agent, include_superseded=all_versions
            )

    table = Table("id", "kind", "importance", "memory", "superseded by")
    for m in with_platform(settings_from(ctx), work):
        table.add_row(m.id, m.kind, f"{m.importance:.2f}", m.text, m.superseded_by or "")
    console.print(table)
