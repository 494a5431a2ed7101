"""Tools: registry, MCP client and server, sandbox, permissions, approvals, built-ins.

The agent runtime needs :class:`Caller`, :class:`ToolCall` and the executor of
:class:`roost.tools.service.ToolService`; see ``docs/tools.md``.
"""

from roost.tools.base import RiskLevel, Tool, ToolFailure, tool, tool_from_function
from roost.tools.executor import ToolCall, ToolExecutor, ToolResult
from roost.tools.permissions import Caller, CapabilityMinter, PermissionPolicy, Role
from roost.tools.toolsets import (
    CombinedToolset,
    FilteredToolset,
    PrefixedToolset,
    RenamedToolset,
    StaticToolset,
    Toolset,
)

__all__ = [
    "Caller",
    "CapabilityMinter",
    "CombinedToolset",
    "FilteredToolset",
    "PermissionPolicy",
    "PrefixedToolset",
    "RenamedToolset",
    "RiskLevel",
    "Role",
    "StaticToolset",
    "Tool",
    "ToolCall",
    "ToolExecutor",
    "ToolFailure",
    "ToolResult",
    "Toolset",
    "tool",
    "tool_from_function",
]
