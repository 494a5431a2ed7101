"""Toolsets: named groups of tools that compose by prefixing, filtering and renaming.

A toolset is anything with ``async def list_tools() -> list[Tool]``; tools from MCP
servers change at run time, so listing is async and not cached here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Protocol, runtime_checkable

from roost.tools.base import Tool


@runtime_checkable
class Toolset(Protocol):
    async def list_tools(self) -> list[Tool]:
        """The tools this set offers now."""
        ...


class StaticToolset:
    """A fixed list of tools."""

    def __init__(self, tools: Iterable[Tool]) -> None:
        self.tools = list(tools)
        names = [t.name for t in self.tools]
        duplicates = {n for n in names if names.count(n) > 1}
        if duplicates:
            raise ValueError(f"duplicate tool names: {sorted(duplicates)}")

    async def list_tools(self) -> list[Tool]:
        return list(self.tools)


class PrefixedToolset:
    """Every tool of ``inner`` named ``<prefix>_<name>`` (how MCP servers stay apart)."""

    def __init__(self, inner: Toolset, prefix: str) -> None:
        self.inner = inner
        self.prefix = prefix

    async def list_tools(self) -> list[Tool]:
        return [t.renamed(f"{self.prefix}_{t.name}") for t in await self.inner.list_tools()]


class FilteredToolset:
    """Only the tools of ``inner`` for which ``keep(tool)`` is true."""

    def __init__(self, inner: Toolset, keep: Callable[[Tool], bool]) -> None:
        self.inner = inner
        self.keep = keep

    async def list_tools(self) -> list[Tool]:
        return [t for t in await self.inner.list_tools() if self.keep(t)]


class RenamedToolset:
    """``inner`` with some tools renamed: ``{"old": "new"}``; others keep their names."""

    def __init__(self, inner: Toolset, names: Mapping[str, str]) -> None:
        self.inner = inner
        self.names = dict(names)

    async def list_tools(self) -> list[Tool]:
        return [t.renamed(self.names.get(t.name, t.name)) for t in await self.inner.list_tools()]


class CombinedToolset:
    """Several toolsets as one; a name offered twice is an error, not a silent shadow."""

    def __init__(self, toolsets: Iterable[Toolset]) -> None:
        self.toolsets = list(toolsets)

    async def list_tools(self) -> list[Tool]:
        seen: dict[str, Tool] = {}
        for toolset in self.toolsets:
            for tool in await toolset.list_tools():
                if tool.name in seen:
                    raise ValueError(f"tool {tool.name!r} is offered by two toolsets")
                seen[tool.name] = tool
        return list(seen.values())
