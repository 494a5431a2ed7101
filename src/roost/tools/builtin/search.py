"""Text search: a regular expression over the workspace, run as ``grep`` in the sandbox.

grep matches with automata rather than backtracking, so a hostile pattern cannot pin a
CPU in the server; the pattern goes after ``-e`` and paths after ``--``, so neither can be
read as an option.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from roost.tools.base import RiskLevel, Tool, ToolFailure, tool
from roost.tools.context import ToolContext
from roost.tools.paths import check_path_text

MAX_MATCHES = 500


@tool(risk=RiskLevel.READ, idempotent=True, timeout_s=60, tags=frozenset({"search"}))
async def search_text(
    ctx: ToolContext,
    pattern: Annotated[str, Field(min_length=1, description="Extended regular expression")],
    path: Annotated[str, Field(description="File or directory to search")] = ".",
    include: Annotated[str | None, Field(description="Only files matching this glob")] = None,
    ignore_case: bool = False,
    max_matches: Annotated[int, Field(ge=1, le=MAX_MATCHES)] = 100,
) -> dict[str, Any]:
    """Search files for a regular expression; returns path, line number and line text."""
    target = ctx.workspace.resolve(path, must_exist=True)
    relative = ctx.workspace.relative(target)
    if include is not None:
        check_path_text(include)
    argv = ["grep", "-rnIE", "--exclude-dir=.git", f"--max-count={max_matches}"]
    if ignore_case:
        argv.append("-i")
    if include is not None:
        argv.append(f"--include={include}")
    argv += ["-e", pattern, "--", relative]
    result = await ctx.run_command(argv)
    if result.exit_code not in (0, 1):  # 1: no match
        raise ToolFailure(f"search failed: {result.stderr.strip()[:500]}", type="search_failed")
    matches = []
    for line in result.stdout.splitlines():
        file, _, rest = line.partition(":")
        number, _, text = rest.partition(":")
        if number.isdigit():
            matches.append({"path": file.removeprefix("./"), "line": int(number), "text": text})
        if len(matches) >= max_matches:
            break
    return {"pattern": pattern, "matches": matches, "truncated": len(matches) >= max_matches}


def search_tools() -> list[Tool]:
    return [search_text]
