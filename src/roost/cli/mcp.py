"""``roost mcp serve --stdio``: Roost's tools for a local MCP client (an IDE, an agent).

Every call runs through the same executor as the HTTP API, for the default tenant (or
``--tenant``), audited as ``mcp:stdio``. stdout carries the protocol, so logs go to stderr.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Annotated, Any

import typer

from roost.cli.common import settings_from
from roost.errors import NotFound
from roost.security import DEFAULT_TENANT

if TYPE_CHECKING:
    from mcp.server.context import ServerRequestContext

app = typer.Typer(help="Serve Roost's tools over MCP.", no_args_is_help=True)


@app.command()
def serve(
    ctx: typer.Context,
    stdio: Annotated[bool, typer.Option("--stdio", help="Speak MCP on stdin/stdout")] = False,
    tenant: Annotated[str, typer.Option("--tenant", "-t", help="Tenant name")] = DEFAULT_TENANT,
) -> None:
    """Serve the tools over MCP. (Streamable HTTP is served by `roost serve` at /mcp.)"""
    # Imported here: the MCP SDK and the tool layer are needed by this command alone.
    from mcp.server.stdio import stdio_server

    from roost.observe.logging import configure_logging
    from roost.platform import Platform
    from roost.tools.mcp_server import build_mcp_server
    from roost.tools.permissions import Caller
    from roost.tools.service import ToolService

    if not stdio:
        typer.echo("use --stdio here; `roost serve` serves MCP over HTTP at /mcp", err=True)
        raise typer.Exit(2)
    settings = settings_from(ctx)
    configure_logging(settings.logging)

    async def run() -> None:
        platform = await Platform.open(settings)
        try:
            owner = await platform.tenants.find_by_name(tenant)
            if owner is None:
                raise NotFound(f"tenant {tenant!r} not found")
            service = await ToolService.open(platform)
            caller = Caller(tenant_id=owner.id, actor="mcp:stdio")

            def caller_of(_: ServerRequestContext[Any]) -> Caller:
                return caller

            server = build_mcp_server(service.executor, caller_of)
            try:
                async with stdio_server() as (read_stream, write_stream):
                    await server.run(
                        read_stream, write_stream, server.create_initialization_options()
                    )
            finally:
                await service.close()
        finally:
            await platform.close()

    asyncio.run(run())
