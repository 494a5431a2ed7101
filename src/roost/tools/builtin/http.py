"""HTTP fetch for agents, through the SSRF guard of :mod:`roost.tools.netguard`."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from roost.tools.base import RiskLevel, Tool, tool
from roost.tools.context import ToolContext
from roost.tools.netguard import fetch


@tool(risk=RiskLevel.NETWORK, timeout_s=60, tags=frozenset({"network"}))
async def http_fetch(
    ctx: ToolContext,
    url: Annotated[str, Field(description="http(s) URL of a public host")],
    method: Literal["GET", "HEAD", "POST"] = "GET",
    headers: Annotated[dict[str, str], Field(description="Request headers")] = {},  # noqa: B006
    body: Annotated[str | None, Field(description="Request body for POST")] = None,
) -> dict[str, Any]:
    """Fetch a URL (redirects followed, internal addresses refused); returns status and text."""
    result = await fetch(
        url,
        ctx.network,
        method=method,
        headers=headers,
        body=body.encode() if body is not None else None,
    )
    return result.to_dict()


def http_tools() -> list[Tool]:
    return [http_fetch]
