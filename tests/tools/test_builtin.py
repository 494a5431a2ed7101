"""Built-in tools, called directly with a context (the executor is tested elsewhere)."""

from __future__ import annotations

from typing import Any

import pytest

from roost.tools.base import Tool, ToolFailure
from roost.tools.builtin import builtin_tools
from roost.tools.context import ToolContext

TOOLS = {t.name: t for t in builtin_tools()}


async def call(ctx: ToolContext, tool_name: str, **arguments: Any) -> Any:
    tool: Tool = TOOLS[tool_name]
    return await tool.handler(ctx, tool.validate_arguments(arguments))


async def test_write_read_ranges_edit_list_glob_delete(ctx: ToolContext) -> None:
    await call(ctx, "write_file", path="src/app.py", content="a = 1\nb = 2\nc = 3\n")
    read = await call(ctx, "read_file", path="src/app.py", offset=2, limit=1)
    assert read["content"] == "     2\tb = 2" and read["total_lines"] == 3
    await call(ctx, "edit_file", path="src/app.py", old_text="b = 2", new_text="b = 20")
    assert (ctx.workspace.root / "src/app.py").read_text() == "a = 1\nb = 20\nc = 3\n"
    listed = await call(ctx, "list_dir", path="src")
    assert listed["entries"] == [{"name": "app.py", "type": "file", "size": 19}]
    assert (await call(ctx, "glob_files", pattern="**/*.py"))["matches"] == ["src/app.py"]
    await call(ctx, "delete_file", path="src/app.py")
    assert not (ctx.workspace.root / "src/app.py").exists()


async def test_edit_requires_a_unique_exact_match(ctx: ToolContext) -> None:
    await call(ctx, "write_file", path="f.txt", content="x x")
    with pytest.raises(ToolFailure, match="occurs 2 times"):
        await call(ctx, "edit_file", path="f.txt", old_text="x", new_text="y")
    with pytest.raises(ToolFailure, match="not found"):
        await call(ctx, "edit_file", path="f.txt", old_text="z", new_text="y")
    done = await call(ctx, "edit_file", path="f.txt", old_text="x", new_text="y", replace_all=True)
    assert done["replacements"] == 2
    assert (ctx.workspace.root / "f.txt").read_text() == "y y"


PYTHON = """
class Parser:
    def parse(self, text):
        return helper(text)

def helper(value):
    return value
"""


async def test_python_outline_symbols_and_diagnostics(ctx: ToolContext) -> None:
    await call(ctx, "write_file", path="m.py", content=PYTHON)
    outline = await call(ctx, "code_outline", path="m.py")
    assert [(s["qualified_name"], s["kind"]) for s in outline["symbols"]] == [
        ("Parser", "class"),
        ("Parser.parse", "method"),
        ("helper", "function"),
    ]
    found = await call(ctx, "find_symbol", name="helper", paths=["m.py"])
    assert [d["line"] for d in found["definitions"]] == [6]
    assert [r["line"] for r in found["references"]] == [4]
    await call(ctx, "write_file", path="bad.py", content="def f(:\n")
    diagnostics = await call(ctx, "syntax_check", path="bad.py")
    assert not diagnostics["ok"] and diagnostics["diagnostics"][0]["line"] == 1


async def test_tree_sitter_languages(ctx: ToolContext) -> None:
    await call(ctx, "write_file", path="a.js", content="function foo() {}\nclass K { m() {} }\n")
    outline = await call(ctx, "code_outline", path="a.js")
    assert [(s["name"], s["line"]) for s in outline["symbols"]] == [("foo", 1), ("K", 2), ("m", 2)]
    await call(ctx, "write_file", path="b.go", content="package main\nfunc main( {\n")
    assert not (await call(ctx, "syntax_check", path="b.go"))["ok"]


async def test_run_command_and_tests_report_structured_results(ctx: ToolContext) -> None:
    result = await call(
        ctx, "run_command", argv=["python3", "-c", "import sys; print('hi'); sys.exit(3)"]
    )
    assert result["exit_code"] == 3 and result["stdout"] == "hi\n" and result["duration_ms"] >= 0
    await call(
        ctx,
        "write_file",
        path="test_x.py",
        content="import unittest\nclass T(unittest.TestCase):\n"
        "    def test_ok(self): pass\n    def test_bad(self): self.fail('no')\n",
    )
    tests = await call(ctx, "run_tests", runner="unittest", paths=["test_x.py"])
    assert tests["passed"] is False
    assert tests["summary"] == {"ran": 2, "failures": 1}


async def test_search_finds_lines_and_treats_the_pattern_as_data(ctx: ToolContext) -> None:
    await call(ctx, "write_file", path="a.txt", content="alpha\n-rf\nbeta\n")
    found = await call(ctx, "search_text", pattern="^(alpha|beta)$")
    assert [(m["path"], m["line"]) for m in found["matches"]] == [("a.txt", 1), ("a.txt", 3)]
    dash = await call(ctx, "search_text", pattern="-rf")
    assert [m["text"] for m in dash["matches"]] == ["-rf"]


async def test_git_status_commit_log_branch_diff(ctx: ToolContext) -> None:
    init = await ctx.sandbox.run(
        ["git", "init", "-q", "-b", "main"], ctx.workspace.root, workspace_root=ctx.workspace.root
    )
    assert init.ok, init.stderr
    await call(ctx, "write_file", path="README.md", content="hello\n")
    status = await call(ctx, "git_status")
    assert status["changes"] == [{"status": "??", "path": "README.md"}]
    commit = await call(ctx, "git_commit", message="--amend first commit", paths=["README.md"])
    assert len(commit["sha"]) == 40
    log = await call(ctx, "git_log")
    assert [c["subject"] for c in log["commits"]] == ["--amend first commit"]
    branch = await call(ctx, "git_branch", create="feature/x")
    assert branch["current"] == "feature/x"
    await call(ctx, "write_file", path="README.md", content="hello\nworld\n")
    assert "+world" in (await call(ctx, "git_diff"))["diff"]
    with pytest.raises(ToolFailure, match="not a valid name"):
        await call(ctx, "git_log", ref="--output=/tmp/pwned")
