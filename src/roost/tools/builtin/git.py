"""Git tools over the git CLI in the sandbox: status, diff, log, branch, commit, push.

Every ref and path is checked so that none can be read as an option (``--upload-pack=…``,
``--output=…``), paths follow ``--``, the commit message travels on stdin, and repository
hooks and fsmonitor commands are switched off so a cloned repo cannot run code through git.
``git_push`` is destructive: it needs an approval under the default policy.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import Field

from roost.tools.base import RiskLevel, Tool, ToolFailure, tool
from roost.tools.context import ToolContext
from roost.tools.paths import check_path_text
from roost.tools.sandbox import CommandResult

_TAGS = frozenset({"git"})
_REF = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,199}$")
_SAFE_CONFIG = [
    "-c", "core.hooksPath=/dev/null", "-c", "core.fsmonitor=false",
    "-c", "protocol.ext.allow=never", "-c", "core.pager=cat", "-c", "color.ui=false",
]  # fmt: skip
_IDENTITY = {
    "GIT_AUTHOR_NAME": "Roost agent",
    "GIT_AUTHOR_EMAIL": "agent@roost.invalid",
    "GIT_COMMITTER_NAME": "Roost agent",
    "GIT_COMMITTER_EMAIL": "agent@roost.invalid",
    "GIT_TERMINAL_PROMPT": "0",
}


def check_ref(ref: str, what: str = "ref") -> str:
    if not _REF.match(ref) or ".." in ref or ref.endswith((".lock", "/", ".")):
        raise ToolFailure(f"{what} {ref!r} is not a valid name", type="invalid_ref")
    return ref


def _check_paths(paths: list[str]) -> list[str]:
    for path in paths:
        check_path_text(path)
    return paths


async def _git(
    ctx: ToolContext, *args: str, stdin: str | None = None, network: bool = False
) -> CommandResult:
    policy = ctx.sandbox.policy.narrowed(network=network) if network else None
    result = await ctx.run_command(
        ["git", *_SAFE_CONFIG, *args],
        policy=policy,
        stdin=stdin.encode() if stdin is not None else None,
        env=_IDENTITY,
    )
    if result.exit_code != 0:
        message = (result.stderr or result.stdout).strip()[-2000:]
        raise ToolFailure(f"git {args[0]} failed: {message}", type="git_error")
    return result


@tool(risk=RiskLevel.READ, idempotent=True, tags=_TAGS)
async def git_status(ctx: ToolContext) -> dict[str, Any]:
    """Working tree status: branch and changed files (porcelain v1)."""
    result = await _git(ctx, "status", "--porcelain=v1", "--branch")
    lines = result.stdout.splitlines()
    branch = lines[0].removeprefix("## ") if lines and lines[0].startswith("##") else None
    changes = [{"status": line[:2], "path": line[3:]} for line in lines[1 if branch else 0 :]]
    return {"branch": branch, "changes": changes, "clean": not changes}


@tool(risk=RiskLevel.READ, idempotent=True, tags=_TAGS)
async def git_diff(
    ctx: ToolContext,
    staged: Annotated[bool, Field(description="Diff the index instead of the work tree")] = False,
    paths: Annotated[list[str], Field(description="Limit to these paths")] = [],  # noqa: B006
) -> dict[str, Any]:
    """Show changes as a unified diff."""
    args = ["diff", "--no-ext-diff", "--no-textconv"] + (["--cached"] if staged else [])
    result = await _git(ctx, *args, "--", *_check_paths(paths))
    return {"diff": result.stdout, "truncated": result.stdout_truncated}


@tool(risk=RiskLevel.READ, idempotent=True, tags=_TAGS)
async def git_log(
    ctx: ToolContext,
    max_count: Annotated[int, Field(ge=1, le=500)] = 20,
    ref: Annotated[str | None, Field(description="Branch or commit to start from")] = None,
) -> dict[str, Any]:
    """Recent commits: hash, author, date, subject."""
    args = ["log", f"--max-count={max_count}", "--format=%H%x1f%an%x1f%aI%x1f%s"]
    if ref is not None:
        args.append(check_ref(ref))
    result = await _git(ctx, *args, "--")
    commits = []
    for line in result.stdout.splitlines():
        sha, author, date, subject = line.split("\x1f", 3)
        commits.append({"sha": sha, "author": author, "date": date, "subject": subject})
    return {"commits": commits}


@tool(risk=RiskLevel.WRITE, tags=_TAGS)
async def git_branch(
    ctx: ToolContext,
    create: Annotated[str | None, Field(description="Create and switch to this branch")] = None,
) -> dict[str, Any]:
    """List branches, or create one and switch to it."""
    if create is not None:
        await _git(ctx, "switch", "-c", check_ref(create, "branch"))
    result = await _git(ctx, "branch", "--format=%(HEAD) %(refname:short)")
    branches = [line[2:] for line in result.stdout.splitlines()]
    current = next((line[2:] for line in result.stdout.splitlines() if line.startswith("*")), None)
    return {"branches": branches, "current": current}


@tool(risk=RiskLevel.WRITE, tags=_TAGS)
async def git_commit(
    ctx: ToolContext,
    message: Annotated[str, Field(min_length=1, description="Commit message")],
    paths: Annotated[
        list[str], Field(description="Paths to stage first; empty stages every change")
    ] = [],  # noqa: B006
) -> dict[str, Any]:
    """Stage the given paths (or all changes) and commit them."""
    if paths:
        await _git(ctx, "add", "--", *_check_paths(paths))
    else:
        await _git(ctx, "add", "--all")
    await _git(ctx, "commit", "--no-verify", "--file=-", stdin=message)
    head = await _git(ctx, "rev-parse", "HEAD")
    return {"sha": head.stdout.strip(), "message": message}


@tool(risk=RiskLevel.DESTRUCTIVE, timeout_s=120, tags=_TAGS)
async def git_push(
    ctx: ToolContext,
    remote: Annotated[str, Field(description="Remote name")] = "origin",
    branch: Annotated[str | None, Field(description="Branch to push; default current")] = None,
) -> dict[str, Any]:
    """Push a branch to a remote (needs network and, by default, an approval)."""
    args = ["push", "--", check_ref(remote, "remote")]
    if branch is not None:
        args.append(check_ref(branch, "branch"))
    result = await _git(ctx, *args, network=True)
    return {"output": (result.stdout + result.stderr).strip()}


def git_tools() -> list[Tool]:
    return [git_status, git_diff, git_log, git_branch, git_commit, git_push]
