"""File tools: read (line ranges), write, edit by exact replacement, delete, list, glob.

Every path goes through :class:`~roost.tools.paths.Workspace`, so nothing here can reach
outside the workspace, follow a planted symlink out of it, or write through one.
"""

from __future__ import annotations

import os
from typing import Annotated, Any

from pydantic import Field

from roost.tools.base import RiskLevel, Tool, ToolFailure, tool
from roost.tools.context import ToolContext
from roost.tools.paths import PathRefused, check_path_text

MAX_READ_BYTES = 2 * 1024 * 1024
MAX_WRITE_BYTES = 8 * 1024 * 1024
MAX_LISTED = 2000
_TAGS = frozenset({"files"})


def _read_text(ctx: ToolContext, path: str) -> str:
    fd = ctx.workspace.open_for_read(path)
    with os.fdopen(fd, "rb") as handle:
        data = handle.read(MAX_READ_BYTES + 1)
    if len(data) > MAX_READ_BYTES:
        raise ToolFailure(
            f"{path!r} is larger than {MAX_READ_BYTES} bytes; read it with offset/limit",
            type="too_large",
        )
    if b"\x00" in data[:8192]:
        raise ToolFailure(f"{path!r} looks like a binary file", type="binary_file")
    return data.decode("utf-8", errors="replace")


def _write_text(ctx: ToolContext, path: str, content: str) -> int:
    data = content.encode()
    if len(data) > MAX_WRITE_BYTES:
        raise ToolFailure(f"content is larger than {MAX_WRITE_BYTES} bytes", type="too_large")
    fd = ctx.workspace.open_for_write(path)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    return len(data)


@tool(risk=RiskLevel.READ, idempotent=True, tags=_TAGS)
async def read_file(
    ctx: ToolContext,
    path: Annotated[str, Field(description="File path relative to the workspace")],
    offset: Annotated[int, Field(ge=1, description="First line to return (1-based)")] = 1,
    limit: Annotated[int, Field(ge=1, le=20000, description="Most lines to return")] = 2000,
) -> dict[str, Any]:
    """Read a text file, optionally a range of lines; lines come back numbered."""
    lines = _read_text(ctx, path).splitlines()
    chosen = lines[offset - 1 : offset - 1 + limit]
    numbered = "\n".join(f"{offset + i:6}\t{line}" for i, line in enumerate(chosen))
    return {
        "path": path,
        "content": numbered,
        "total_lines": len(lines),
        "returned": [offset, offset + len(chosen) - 1] if chosen else [],
    }


@tool(risk=RiskLevel.WRITE, idempotent=True, tags=_TAGS)
async def write_file(
    ctx: ToolContext,
    path: Annotated[str, Field(description="File path relative to the workspace")],
    content: Annotated[str, Field(description="The whole new content of the file")],
) -> dict[str, Any]:
    """Create or overwrite a text file (parent directories are created)."""
    written = _write_text(ctx, path, content)
    return {"path": path, "bytes_written": written}


@tool(risk=RiskLevel.WRITE, tags=_TAGS)
async def edit_file(
    ctx: ToolContext,
    path: Annotated[str, Field(description="File path relative to the workspace")],
    old_text: Annotated[str, Field(min_length=1, description="Exact text to replace")],
    new_text: Annotated[str, Field(description="Replacement text")],
    replace_all: Annotated[bool, Field(description="Replace every occurrence")] = False,
) -> dict[str, Any]:
    """Replace exact text in a file; unless replace_all, the text must occur exactly once."""
    content = _read_text(ctx, path)
    count = content.count(old_text)
    if count == 0:
        raise ToolFailure(f"old_text was not found in {path!r}", type="no_match")
    if count > 1 and not replace_all:
        raise ToolFailure(
            f"old_text occurs {count} times in {path!r}; add context to make it unique"
            " or set replace_all",
            type="ambiguous_match",
        )
    updated = (
        content.replace(old_text, new_text)
        if replace_all
        else content.replace(old_text, new_text, 1)
    )
    _write_text(ctx, path, updated)
    return {"path": path, "replacements": count if replace_all else 1}


@tool(risk=RiskLevel.DESTRUCTIVE, tags=_TAGS)
async def delete_file(
    ctx: ToolContext,
    path: Annotated[str, Field(description="File path relative to the workspace")],
) -> dict[str, Any]:
    """Delete one file (not a directory). A symlink is removed itself, never its target."""
    _delete(ctx, path)
    return {"path": path, "deleted": True}


def _delete(ctx: ToolContext, path: str) -> None:
    check_path_text(path)
    parent = ctx.workspace.resolve(os.path.dirname(path) or ".", must_exist=True)
    target = parent / os.path.basename(path)
    if target == ctx.workspace.root:
        raise PathRefused("cannot delete the workspace root")
    if not os.path.lexists(target):
        raise ToolFailure(f"{path!r} does not exist", type="not_found")
    if target.is_dir() and not target.is_symlink():
        raise ToolFailure(f"{path!r} is a directory", type="not_a_file")
    target.unlink()


@tool(risk=RiskLevel.READ, idempotent=True, tags=_TAGS)
async def list_dir(
    ctx: ToolContext,
    path: Annotated[str, Field(description="Directory relative to the workspace")] = ".",
) -> dict[str, Any]:
    """List a directory: names with a trailing '/' for directories, and sizes of files."""
    directory = ctx.workspace.resolve(path, must_exist=True)
    if not directory.is_dir():
        raise ToolFailure(f"{path!r} is not a directory", type="not_a_directory")
    entries: list[dict[str, Any]] = []
    for entry in sorted(os.scandir(directory), key=lambda e: e.name)[:MAX_LISTED]:
        if entry.is_dir(follow_symlinks=False):
            entries.append({"name": entry.name + "/", "type": "dir"})
        elif entry.is_symlink():
            entries.append({"name": entry.name, "type": "symlink"})
        else:
            entries.append({"name": entry.name, "type": "file", "size": entry.stat().st_size})
    return {"path": path, "entries": entries}


@tool(risk=RiskLevel.READ, idempotent=True, tags=_TAGS)
async def glob_files(
    ctx: ToolContext,
    pattern: Annotated[str, Field(description="Glob such as 'src/**/*.py'")],
) -> dict[str, Any]:
    """Find files by glob pattern, relative to the workspace; symlinks out of it are skipped."""
    check_path_text(pattern)
    root = ctx.workspace.root
    matches: list[str] = []
    for match in sorted(root.glob(pattern)):
        if not match.resolve().is_relative_to(root) or ".git" in match.relative_to(root).parts:
            continue
        matches.append(match.relative_to(root).as_posix())
        if len(matches) >= MAX_LISTED:
            break
    return {"pattern": pattern, "matches": matches, "truncated": len(matches) >= MAX_LISTED}


def file_tools() -> list[Tool]:
    return [read_file, write_file, edit_file, delete_file, list_dir, glob_files]
