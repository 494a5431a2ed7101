"""Execution tools: run a command, run the project's tests. Both go through the sandbox."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Annotated, Any, Literal

from pydantic import Field

from roost.tools.base import RiskLevel, Tool, tool
from roost.tools.context import ToolContext
from roost.tools.paths import PathRefused, check_path_text

_TAGS = frozenset({"exec"})
_PYTEST_COUNTS = re.compile(r"(\d+) (passed|failed|errors?|skipped|xfailed|xpassed)")
_UNITTEST_RAN = re.compile(r"Ran (\d+) tests?")
_UNITTEST_FAILED = re.compile(r"(failures|errors|skipped)=(\d+)")


@tool(risk=RiskLevel.EXECUTE, timeout_s=600, tags=_TAGS)
async def run_command(
    ctx: ToolContext,
    argv: Annotated[
        list[str],
        Field(min_length=1, description="Program and arguments as a list; no shell is used"),
    ],
    cwd: Annotated[str, Field(description="Directory inside the workspace")] = ".",
    stdin: Annotated[str | None, Field(description="Text fed to standard input")] = None,
) -> dict[str, Any]:
    """Run an allowlisted program in the sandbox; returns exit code, output tails, duration."""
    directory = ctx.workspace.resolve(cwd, must_exist=True)
    result = await ctx.run_command(
        argv, directory, stdin=stdin.encode() if stdin is not None else None
    )
    return result.to_dict()


async def _prepare_run_command(ctx: ToolContext, arguments: dict[str, Any]) -> None:
    directory = ctx.workspace.resolve(arguments.get("cwd", "."), must_exist=True)
    await ctx.prepare_command(arguments["argv"], directory)


@tool(risk=RiskLevel.EXECUTE, timeout_s=900, tags=_TAGS)
async def run_tests(
    ctx: ToolContext,
    paths: Annotated[list[str], Field(description="Test files or directories")] = [],  # noqa: B006
    runner: Annotated[Literal["pytest", "unittest"], Field(description="Test runner")] = "pytest",
    keyword: Annotated[str | None, Field(description="pytest -k expression")] = None,
) -> dict[str, Any]:
    """Run the project's tests in the sandbox and summarise passed/failed counts."""
    result = await ctx.run_command(_tests_argv(paths, runner, keyword))
    summary = _summarise(runner, result.stdout + "\n" + result.stderr)
    return {**result.to_dict(), "passed": result.ok, "summary": summary}


def _tests_argv(paths: list[str], runner: str, keyword: str | None) -> list[str]:
    for path in paths:
        check_path_text(path)
        if path.startswith("-"):
            raise PathRefused(f"test path {path!r} may not start with '-'")
    if runner == "pytest":
        argv = ["python3", "-m", "pytest", "-q", "-p", "no:cacheprovider"]
        if keyword is not None:
            argv.append(f"-k={keyword}")
        return argv + (["--", *paths] if paths else [])
    return ["python3", "-m", "unittest", *paths]


async def _prepare_run_tests(ctx: ToolContext, arguments: dict[str, Any]) -> None:
    argv = _tests_argv(arguments["paths"], arguments["runner"], arguments["keyword"])
    await ctx.prepare_command(argv)


def _summarise(runner: str, output: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    if runner == "pytest":
        for number, label in _PYTEST_COUNTS.findall(output):
            counts[label.rstrip("s") if label.startswith("error") else label] = int(number)
        return counts
    ran = _UNITTEST_RAN.search(output)
    if ran:
        counts["ran"] = int(ran.group(1))
    for label, number in _UNITTEST_FAILED.findall(output):
        counts[label] = int(number)
    return counts


def execution_tools() -> list[Tool]:
    return [
        replace(run_command, prepare=_prepare_run_command),
        replace(run_tests, prepare=_prepare_run_tests),
    ]
