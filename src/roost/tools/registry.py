"""Which tools each tenant can see: toolsets shared by all tenants plus each tenant's own."""

from __future__ import annotations

from collections import defaultdict

from roost.errors import NotFound
from roost.tools.base import Tool
from roost.tools.toolsets import CombinedToolset, Toolset


class ToolRegistry:
    """Shared toolsets (built-ins, operator-configured MCP servers) and per-tenant ones."""

    def __init__(self, shared: list[Toolset] | None = None) -> None:
        self.shared: list[Toolset] = list(shared or [])
        self._by_tenant: dict[str, list[Toolset]] = defaultdict(list)

    def add_shared(self, toolset: Toolset) -> None:
        self.shared.append(toolset)

    def add_for_tenant(self, tenant_id: str, toolset: Toolset) -> None:
        self._by_tenant[tenant_id].append(toolset)

    def remove_for_tenant(self, tenant_id: str, toolset: Toolset) -> None:
        self._by_tenant[tenant_id].remove(toolset)

    async def list_tools(self, tenant_id: str) -> list[Tool]:
        """Every tool ``tenant_id`` can call, sorted by name."""
        combined = CombinedToolset([*self.shared, *self._by_tenant.get(tenant_id, [])])
        return sorted(await combined.list_tools(), key=lambda t: t.name)

    async def get(self, tenant_id: str, name: str) -> Tool:
        """The tool called ``name`` for ``tenant_id``; :class:`NotFound` names it otherwise."""
        for tool in await self.list_tools(tenant_id):
            if tool.name == name:
                return tool
        raise NotFound(f"no tool named {name!r}", param="name")
