"""``roost memory search|list``: an agent's long-term memory, on this machine's store
through the kernel's memory services, or a server's with ``--url`` (see
:mod:`roost.cli.target`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from roost.cli.common import format_time
from roost.cli.output import JsonOption, print_json, print_table, table
from roost.cli.server_client import ApiKeyOption, UrlOption
from roost.cli.target import Api, TenantOption, act, tenant_id
from roost.errors import Overloaded

if TYPE_CHECKING:
    from roost.memory.service import MemoryServices
    from roost.platform import Roost

app = typer.Typer(help="Long-term memory of agents: search and list.", no_args_is_help=True)
AgentOpt = Annotated[str, typer.Option("--agent", "-a", help="Agent id")]


def memory_of(kernel: Roost) -> MemoryServices:
    if kernel.memory is None:
        raise Overloaded("the memory services are not open in this process")
    return kernel.memory


@app.command()
def search(
    ctx: typer.Context,
    query: str,
    agent: AgentOpt = "default",
    k: Annotated[int, typer.Option("-k", min=1, max=100, help="How many results")] = 5,
    tenant: TenantOption = None,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """Memories of an agent ranked by relevance, recency and importance."""

    async def local(kernel: Roost) -> list[dict[str, Any]]:
        from roost.memory.wire import recalled_json

        owner = await tenant_id(kernel, tenant)
        return [recalled_json(r) for r in await memory_of(kernel).recall(owner, agent, query, k=k)]

    def remote(api: Api) -> list[dict[str, Any]]:
        return list(api.post(f"/v1/memory/agents/{agent}/search", {"query": query, "k": k})["data"])

    found = act(ctx, url, api_key, local=local, remote=remote, tenant=tenant)
    if as_json:
        print_json(found)
        return
    shown = table("score", "kind", "memory", "since", "thread", ids=("score", "thread"))
    for m in found:
        shown.add_row(f"{m['score']:.3f}", m["kind"], m["text"], format_time(m["valid_from"]),
                      str(m["source"].get("thread_id", "")))  # fmt: skip
    print_table(shown)


@app.command("list")
def list_memories(
    ctx: typer.Context,
    agent: AgentOpt = "default",
    all_versions: Annotated[bool, typer.Option("--all", help="Include superseded memories")] = False,
    tenant: TenantOption = None,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
    as_json: JsonOption = False,
) -> None:  # fmt: skip
    """Current memories of an agent, oldest first."""

    async def local(kernel: Roost) -> list[dict[str, Any]]:
        from roost.memory.wire import memory_json

        found = await memory_of(kernel).long_term.list_memories(
            await tenant_id(kernel, tenant), agent, include_superseded=all_versions
        )
        return [memory_json(m) for m in found]

    def remote(api: Api) -> list[dict[str, Any]]:
        path = f"/v1/memory/agents/{agent}/memories"
        return list(api.get(path, include_superseded=all_versions)["data"])

    found = act(ctx, url, api_key, local=local, remote=remote, tenant=tenant)
    if as_json:
        print_json(found)
        return
    shown = table(
        "id", "kind", "importance", "memory", "superseded by", ids=("id", "superseded by")
    )
    for m in found:
        shown.add_row(m["id"], m["kind"], f"{m['importance']:.2f}", m["text"],
                      m["superseded_by"] or "")  # fmt: skip
    print_table(shown)
