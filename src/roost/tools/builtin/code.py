"""Code analysis: outline, symbol definitions and references, syntax diagnostics.

Python is read with the standard ``ast`` module; other languages with tree-sitter grammars
from ``tree-sitter-language-pack`` (the 0.x line bundles its grammars, so this works
offline). Definitions are nodes whose type names a function, class, method, struct,
interface, enum, trait or type and which carry a ``name`` field.
"""

from __future__ import annotations

import ast
from pathlib import PurePosixPath
from typing import Annotated, Any

from pydantic import Field

from roost.tools.base import RiskLevel, Tool, ToolFailure, tool
from roost.tools.builtin.files import _read_text
from roost.tools.context import ToolContext

_TAGS = frozenset({"code"})
_LANGUAGES = {
    ".js": "javascript", ".jsx": "javascript", ".mjs": "javascript", ".ts": "typescript",
    ".tsx": "tsx", ".go": "go", ".rs": "rust", ".java": "java", ".c": "c", ".h": "c",
    ".cc": "cpp", ".cpp": "cpp", ".hpp": "cpp", ".rb": "ruby", ".php": "php",
    ".cs": "csharp", ".kt": "kotlin", ".swift": "swift", ".scala": "scala", ".lua": "lua",
    ".sh": "bash", ".bash": "bash",
}  # fmt: skip
_DEFINITION_WORDS = ("function", "class", "method", "struct", "interface", "enum", "trait", "type")
MAX_ITEMS = 2000
PathArg = Annotated[str, Field(description="Source file relative to the workspace")]


def _language(path: str) -> str:
    suffix = PurePosixPath(path).suffix.lower()
    if suffix in (".py", ".pyi"):
        return "python"
    language = _LANGUAGES.get(suffix)
    if language is None:
        raise ToolFailure(f"no parser for {suffix or 'files without a suffix'}", type="unsupported")
    return language


def _python_symbols(source: str) -> list[dict[str, Any]]:
    tree = ast.parse(source)
    symbols: list[dict[str, Any]] = []

    def visit(node: ast.AST, parent: str | None) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                kind = (
                    "class"
                    if isinstance(child, ast.ClassDef)
                    else ("method" if parent else "function")
                )
                qualified = f"{parent}.{child.name}" if parent else child.name
                symbols.append(
                    {"name": child.name, "qualified_name": qualified, "kind": kind,
                     "line": child.lineno, "end_line": child.end_lineno}
                )  # fmt: skip
                visit(child, qualified)

    visit(tree, None)
    return symbols


def _tree_sitter_root(source: str, language: str) -> Any:
    from tree_sitter_language_pack import get_parser

    return get_parser(language).parse(source.encode()).root_node  # type: ignore[arg-type]


def _tree_sitter_symbols(source: str, language: str) -> list[dict[str, Any]]:
    symbols: list[dict[str, Any]] = []
    stack = [_tree_sitter_root(source, language)]
    while stack and len(symbols) < MAX_ITEMS:
        node = stack.pop()
        name = node.child_by_field_name("name")
        if name is not None and any(w in node.type for w in _DEFINITION_WORDS):
            symbols.append(
                {"name": name.text.decode(), "qualified_name": name.text.decode(),
                 "kind": node.type, "line": node.start_point[0] + 1,
                 "end_line": node.end_point[0] + 1}
            )  # fmt: skip
        stack.extend(reversed(node.children))
    return symbols


def _symbols(source: str, language: str) -> list[dict[str, Any]]:
    if language == "python":
        try:
            return _python_symbols(source)
        except SyntaxError as exc:
            raise ToolFailure(
                f"syntax error at line {exc.lineno}: {exc.msg}", type="syntax_error"
            ) from exc
    return _tree_sitter_symbols(source, language)


@tool(risk=RiskLevel.READ, idempotent=True, tags=_TAGS)
async def code_outline(ctx: ToolContext, path: PathArg) -> dict[str, Any]:
    """Outline a source file: its classes, functions and methods with line ranges."""
    language = _language(path)
    return {
        "path": path,
        "language": language,
        "symbols": _symbols(_read_text(ctx, path), language),
    }


@tool(risk=RiskLevel.READ, idempotent=True, tags=_TAGS)
async def find_symbol(
    ctx: ToolContext,
    name: Annotated[str, Field(min_length=1, description="Symbol name, e.g. 'parse'")],
    paths: Annotated[list[str], Field(description="Files to search")],
) -> dict[str, Any]:
    """Find where a symbol is defined and where it is referenced in the given files."""
    definitions: list[dict[str, Any]] = []
    references: list[dict[str, Any]] = []
    for path in paths[:200]:
        language = _language(path)
        source = _read_text(ctx, path)
        for symbol in _symbols(source, language):
            if symbol["name"] == name:
                definitions.append({"path": path, **symbol})
        for line in _reference_lines(source, language, name):
            references.append({"path": path, "line": line})
    return {"name": name, "definitions": definitions, "references": references[:MAX_ITEMS]}


def _reference_lines(source: str, language: str, name: str) -> list[int]:
    if language == "python":
        lines = set()
        for node in ast.walk(ast.parse(source)):
            if (isinstance(node, ast.Name) and node.id == name) or (
                isinstance(node, ast.Attribute) and node.attr == name
            ):
                lines.add(node.lineno)
        return sorted(lines)
    found: set[int] = set()
    stack = [_tree_sitter_root(source, language)]
    while stack:
        node = stack.pop()
        if "identifier" in node.type and node.text.decode() == name:
            found.add(node.start_point[0] + 1)
        stack.extend(node.children)
    return sorted(found)


@tool(risk=RiskLevel.READ, idempotent=True, tags=_TAGS)
async def syntax_check(ctx: ToolContext, path: PathArg) -> dict[str, Any]:
    """Report syntax errors in a source file (empty list when it parses cleanly)."""
    language = _language(path)
    source = _read_text(ctx, path)
    diagnostics: list[dict[str, Any]] = []
    if language == "python":
        try:
            ast.parse(source)
        except SyntaxError as exc:
            diagnostics.append({"line": exc.lineno, "column": exc.offset, "message": exc.msg})
    else:
        stack = [_tree_sitter_root(source, language)]
        while stack and len(diagnostics) < 100:
            node = stack.pop()
            if node.is_error or node.is_missing:
                what = f"missing {node.type}" if node.is_missing else "syntax error"
                diagnostics.append(
                    {"line": node.start_point[0] + 1, "column": node.start_point[1] + 1,
                     "message": what}
                )  # fmt: skip
            elif node.has_error:
                stack.extend(node.children)
    return {"path": path, "language": language, "ok": not diagnostics, "diagnostics": diagnostics}


def code_tools() -> list[Tool]:
    return [code_outline, find_symbol, syntax_check]
