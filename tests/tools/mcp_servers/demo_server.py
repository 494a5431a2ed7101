"""A small MCP server built with the official SDK, run over stdio as the peer in tests."""

from __future__ import annotations

import os

from mcp.server.mcpserver import MCPServer
from mcp_types import ToolAnnotations

server = MCPServer("demo")


@server.tool(annotations=ToolAnnotations(read_only_hint=True))
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@server.tool(annotations=ToolAnnotations(read_only_hint=True))
def pid() -> int:
    """The server's process id (tests kill it to force a reconnect)."""
    return os.getpid()


@server.tool()
def explode(reason: str) -> str:
    """Always fails."""
    raise ValueError(f"exploded: {reason}")


@server.resource("demo://readme")
def readme() -> str:
    """A readme."""
    return "hello from demo"


@server.prompt()
def review(language: str) -> str:
    """Ask for a code review."""
    return f"Review this {language} code."


if __name__ == "__main__":
    server.run("stdio")
