"""``roost tools list|show|run``: the tool layer from a terminal, under the same executor
(permissions, sandbox, approvals, audit) as agents and the HTTP API; on this machine
through the kernel's tool service, or a server's with ``--url`` (see
:mod:`roost.cli.target`).

On this machine the configured MCP servers are connected for ``tools`` commands (their
tools are listed and run); the kernel of other commands leaves them unconnected.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

import typer

from roost.cli.common import fail
from roost.cli.output import JsonOption, print_json, print_table, table
from roost.cli.server_client import ApiKeyOption, UrlOption
from roost.cli.target import Api, TenantOption, act, tenant_id

if TYPE_CHECKING:
    from roost.platform import Roost
    from roost.tools.permissions import Caller

app = typer.Typer(help="List, describe and run tools.", no_args_is_help=True)


async def _caller(kernel: Roost, tenant: str | None) -> Caller:
    from roost.tools.permissions import Caller

    return Caller(tenant_id=await tenant_id(kernel, tenant), actor="cli")


def _with_mcp(kernel: Roost) -> None:
    # The command kernel leaves MCP servers unconnected; tool commands want their tools.
    kernel.tools.add_mcp_servers(kernel.settings.tools)


async def _described(kernel: Roost, tenant: str | None) -> list[dict[str, Any]]:
    _with_mcp(kernel)
    tools = await kernel.tools.executor.list_tools(await _caller(kernel, tenant))
    return [tool.describe() for tool in tools]


@app.command("list")
def list_tools(
    ctx: typer.Context,
    tenant: TenantOption = None,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """Every tool the caller may use, with its risk level (MCP servers' tools included)."""

    async def local(kernel: Roost) -> list[dict[str, Any]]:
        return await _described(kernel, tenant)

    def remote(api: Api) -> list[dict[str, Any]]:
        return list(api.get("/v1/tools")["data"])

    tools = act(ctx, url, api_key, local=local, remote=remote, tenant=tenant)
    if as_json:
        print_json(tools)
        return
    shown = table("name", "risk", "description", ids=("name",))
    for tool in tools:
        shown.add_row(tool["name"], tool["risk"], " ".join(tool["description"].split()))
    print_table(shown)


@app.command()
def show(
    ctx: typer.Context,
    name: str,
    tenant: TenantOption = None,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """One tool: description, risk, timeout and the JSON Schema of its arguments."""

    async def local(kernel: Roost) -> list[dict[str, Any]]:
        return await _described(kernel, tenant)

    def remote(api: Api) -> list[dict[str, Any]]:
        return list(api.get("/v1/tools")["data"])

    found = [t for t in act(ctx, url, api_key, local=local, remote=remote, tenant=tenant)
             if t["name"] == name]  # fmt: skip
    if not found:
        fail(f"no tool named {name!r} (see roost tools list)")
    tool = found[0]
    if as_json:
        print_json(tool)
        return
    typer.echo(f"{tool['name']}  risk={tool['risk']}  timeout={tool['timeout_s']}s")
    typer.echo(tool["description"])
    typer.echo("arguments (JSON Schema):")
    typer.echo(json.dumps(tool["input_schema"], indent=2))


@app.command()
def run(
    ctx: typer.Context,
    name: str,
    arguments: Annotated[
        str, typer.Option("--args", "-a", help='Arguments as a JSON object, e.g. \'{"path": "."}\'')
    ] = "{}",
    approval: Annotated[str | None, typer.Option(help="Approval id covering this call")] = None,
    tenant: TenantOption = None,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """Run one tool and print its result as JSON (exit 1 unless status is ok)."""
    try:
        parsed = json.loads(arguments)
    except json.JSONDecodeError as exc:
        raise typer.BadParameter(f"not JSON: {exc}", param_hint="--args") from exc
    if not isinstance(parsed, dict):
        raise typer.BadParameter("must be a JSON object", param_hint="--args")

    async def local(kernel: Roost) -> dict[str, Any]:
        from roost.tools.executor import ToolCall

        _with_mcp(kernel)
        call = ToolCall(name, parsed, approval_id=approval)
        return (await kernel.tools.executor.execute(await _caller(kernel, tenant), call)).to_dict()

    def remote(api: Api) -> dict[str, Any]:
        body = {"arguments": parsed, "approval_id": approval}
        return dict(api.post(f"/v1/tools/{name}/execute", body))

    result = act(ctx, url, api_key, local=local, remote=remote, tenant=tenant)
    print_json(result)
    if result["status"] != "ok":
        raise typer.Exit(1)
