"""``roost agents create|list|show|run``: register specs and run agents.

``create``, ``list`` and ``show`` work on the database directly (no server needed);
``run`` goes through a running server's threads/runs API, streaming the answer.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from roost.cli.common import console, err_console, format_time, settings_from, with_platform
from roost.cli.coordinate import coordinate
from roost.cli.server_client import ApiKeyOption, UrlOption, check, server_client, unreachable
from roost.errors import NotFound, RoostError
from roost.security import DEFAULT_TENANT

if TYPE_CHECKING:
    import httpx

    from roost.agents.registry import AgentRegistry, AgentVersion
    from roost.platform import Platform

app = typer.Typer(help="Register agent specs and run agents.", no_args_is_help=True)
TenantOption = Annotated[str, typer.Option("--tenant", "-t", help="Tenant name")]


async def _registry(platform: Platform, tenant: str) -> tuple[AgentRegistry, str]:
    # Imported here: the agents layer pulls in the graph runtime, which `roost --help` skips.
    from roost.agents.registry import AgentRegistry
    from roost.agents.schema import AGENT_MIGRATIONS
    from roost.storage import migrate

    await migrate(platform.database, AGENT_MIGRATIONS)
    found = await platform.tenants.find_by_name(tenant)
    if found is None:
        raise NotFound(f"tenant {tenant!r} not found")
    return AgentRegistry(platform.database), found.id


def _line(agent: AgentVersion) -> str:
    tags = f" [{', '.join(agent.tags)}]" if agent.tags else ""
    return (
        f"{agent.name}  v{agent.version}{tags}  model={agent.spec.model}"
        f"  tools={','.join(agent.spec.tools) or '-'}  created={format_time(agent.created_at)}"
    )


@app.command("create")
def create(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="Spec file: .yaml, .toml or .json")],
    tag: Annotated[list[str] | None, typer.Option("--tag", help="Tag this version")] = None,
    tenant: TenantOption = DEFAULT_TENANT,
) -> None:
    """Register a spec; a new version only when it changed."""
    from roost.agents.spec import load_spec_file

    try:
        spec = load_spec_file(path)
    except (OSError, RoostError) as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False)
        raise typer.Exit(1) from exc

    async def work(platform: Platform) -> tuple[AgentVersion, bool]:
        registry, tenant_id = await _registry(platform, tenant)
        return await registry.create(tenant_id, spec, tags=tuple(tag or ()))

    agent, created = with_platform(settings_from(ctx), work)
    verb = "created" if created else "unchanged, still"
    console.print(f"{verb} {agent.name} v{agent.version}", highlight=False)


@app.command("list")
def list_agents(ctx: typer.Context, tenant: TenantOption = DEFAULT_TENANT) -> None:
    """The newest version of every agent."""

    async def work(platform: Platform) -> list[AgentVersion]:
        registry, tenant_id = await _registry(platform, tenant)
        return await registry.list(tenant_id)

    for agent in with_platform(settings_from(ctx), work):
        console.print(_line(agent), highlight=False, soft_wrap=True, markup=False)


@app.command("show")
def show(
    ctx: typer.Context,
    name: str,
    version: Annotated[str | None, typer.Option("--version", "-v", help="Number or tag")] = None,
    tenant: TenantOption = DEFAULT_TENANT,
) -> None:
    """Print one version's spec as JSON."""

    async def work(platform: Platform) -> AgentVersion:
        registry, tenant_id = await _registry(platform, tenant)
        return await registry.get(tenant_id, name, version)

    agent = with_platform(settings_from(ctx), work)
    console.print_json(json.dumps(agent.to_dict()))


@app.command("run")
def run(
    ctx: typer.Context,
    name: str,
    message: Annotated[str, typer.Argument(help="What to ask the agent")],
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
    thread: Annotated[str | None, typer.Option(help="Continue this thread")] = None,
    version: Annotated[str | None, typer.Option("--version", "-v")] = None,
    var: Annotated[list[str] | None, typer.Option(help="Template variable name=value")] = None,
) -> None:
    """Run an agent on a running server and stream its answer."""
    import httpx

    settings = settings_from(ctx)
    variables = dict(item.split("=", 1) for item in var or [] if "=" in item)
    client = server_client(settings, url, api_key)
    try:
        with client:
            thread_id = thread or check(client.post("/v1/threads", json={}))["id"]
            body = {"agent": name, "input": message, "mode": "stream", "variables": variables}
            if version is not None:
                body["version"] = version
            with client.stream("POST", f"/v1/threads/{thread_id}/runs", json=body) as response:
                if response.status_code >= 400:
                    response.read()
                    check(response)
                final = _print_events(response)
    except httpx.HTTPError as exc:
        raise unreachable(client, exc) from exc
    run_info = final.get("run", {})
    status = run_info.get("status", "unknown")
    err_console.print(
        f"\nrun {run_info.get('id')} {status} on thread {thread_id}"
        f"  usage={json.dumps(run_info.get('usage', {}))}",
        highlight=False,
    )
    if status == "interrupted":
        err_console.print("waiting for approval: roost approvals list", highlight=False)
    elif status != "succeeded":
        err_console.print(f"[bold red]error:[/] {run_info.get('error')}", highlight=False)
        raise typer.Exit(1)


def _print_events(response: httpx.Response) -> dict[str, Any]:
    final: dict[str, Any] = {}
    for line in response.iter_lines():
        if not line.startswith("data: "):
            continue
        event = json.loads(line[len("data: ") :])
        kind = event.get("event")
        if kind == "token":
            console.print(event["text"], end="", highlight=False, soft_wrap=True)
        elif kind == "tool_call":
            err_console.print(
                f"\n[dim]→ {event['tool']}({json.dumps(event.get('arguments'))})[/]",
                highlight=False,
            )
        elif kind == "run_end":
            final = event
    return final


app.command("coordinate")(coordinate)
