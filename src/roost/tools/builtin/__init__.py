"""The built-in kit: files, code analysis, execution, git, search, HTTP, arithmetic."""

from __future__ import annotations

from roost.tools.base import Tool
from roost.tools.builtin.calculator import calculator_tools
from roost.tools.builtin.code import code_tools
from roost.tools.builtin.execution import execution_tools
from roost.tools.builtin.files import file_tools
from roost.tools.builtin.git import git_tools
from roost.tools.builtin.http import http_tools
from roost.tools.builtin.search import search_tools
from roost.tools.toolsets import StaticToolset


def builtin_tools() -> list[Tool]:
    return [
        *file_tools(),
        *code_tools(),
        *execution_tools(),
        *git_tools(),
        *search_tools(),
        *http_tools(),
        *calculator_tools(),
    ]


def builtin_toolset() -> StaticToolset:
    """Every built-in tool as one toolset."""
    return StaticToolset(builtin_tools())


__all__ = ["builtin_tools", "builtin_toolset"]
