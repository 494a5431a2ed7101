"""``roost agents create|list|show|run``: register specs and run agents.

``create``, ``list`` and ``show`` act on this machine's store through the kernel (no
server needed) or, with ``--url`` / ``ROOST_URL``, on that server (see
:mod:`roost.cli.target`); ``run`` goes through a running server's threads/runs API,
streaming the answer.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from roost.cli.common import console, err_console, fail, format_time, settings_from
from roost.cli.coordinate import coordinate
from roost.cli.output import JsonOption, print_json
from roost.cli.server_client import ApiKeyOption, UrlOption, check, server_client, unreachable
from roost.cli.target import Api, TenantOption, act, tenant_id
from roost.errors import RoostError

if TYPE_CHECKING:
    import httpx

    from roost.platform import Roost

app = typer.Typer(help="Register agent specs and run agents.", no_args_is_help=True)


def _line(agent: dict[str, Any]) -> str:
    spec = agent["spec"]
    tags = f" [{', '.join(agent['tags'])}]" if agent.get("tags") else ""
    return (
        f"{agent['name']}  v{agent['version']}{tags}  model={spec['model']}"
        f"  tools={','.join(spec['tools']) or '-'}  created={format_time(agent['created_at'])}"
    )


@app.command("create")
def create(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="Spec file: .yaml, .toml or .json")],
    tag: Annotated[list[str] | None, typer.Option("--tag", help="Tag this version")] = None,
    tenant: TenantOption = None,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """Register a spec (checked against the models and tools offered here, every problem
    listed); a new version only when it changed."""
    from roost.agents.spec import read_spec_file

    try:
        data = read_spec_file(path)
    except (OSError, RoostError) as exc:
        fail(str(exc))
    tags = tag or []

    async def local(kernel: Roost) -> dict[str, Any]:
        version, created = await kernel.catalog.create(
            await tenant_id(kernel, tenant), data, tags=tags
        )
        return {**version.to_dict(), "created": created}

    def remote(api: Api) -> dict[str, Any]:
        return dict(api.post("/v1/agents", {"spec": data, "tags": tags}))

    agent = act(ctx, url, api_key, local=local, remote=remote, tenant=tenant)
    if as_json:
        print_json(agent)
        return
    verb = "created" if agent["created"] else "unchanged, still"
    console.print(f"{verb} {agent['name']} v{agent['version']}", highlight=False)


@app.command("list")
def list_agents(
    ctx: typer.Context,
    tenant: TenantOption = None,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """The newest version of every agent."""

    async def local(kernel: Roost) -> list[dict[str, Any]]:
        agents = await kernel.runs.registry.list(await tenant_id(kernel, tenant))
        return [agent.to_dict() for agent in agents]

    def remote(api: Api) -> list[dict[str, Any]]:
        return list(api.get("/v1/agents")["data"])

    agents = act(ctx, url, api_key, local=local, remote=remote, tenant=tenant)
    if as_json:
        print_json(agents)
        return
    for agent in agents:
        console.print(_line(agent), highlight=False, soft_wrap=True, markup=False)
    if not agents:
        console.print("no agents (register one: roost agents create SPEC.yaml)")


@app.command("show")
def show(
    ctx: typer.Context,
    name: str,
    version: Annotated[str | None, typer.Option("--version", "-v", help="Number or tag")] = None,
    tenant: TenantOption = None,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """One version: a summary and its spec as YAML (--json: the whole record)."""

    async def local(kernel: Roost) -> dict[str, Any]:
        registry = kernel.runs.registry
        return (await registry.get(await tenant_id(kernel, tenant), name, version)).to_dict()

    def remote(api: Api) -> dict[str, Any]:
        return dict(api.get(f"/v1/agents/{name}", version=version))

    agent = act(ctx, url, api_key, local=local, remote=remote, tenant=tenant)
    if as_json:
        print_json(agent)
        return
    import yaml

    console.print(_line(agent), highlight=False, soft_wrap=True, markup=False)
    typer.echo(yaml.safe_dump(agent["spec"], sort_keys=False, allow_unicode=True).rstrip())


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
        fail(str(run_info.get("error")))


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
