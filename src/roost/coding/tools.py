"""The coder's own tools: atomic edits, the repository map and code search, and the
AI-assisted tools (a model call with the relevant code in context, returning a proposed
diff or text, never writing).

``roost.tools`` does not know the LLM layer; :func:`coding_toolset` gets a function that
returns the kernel's LLM service and the model to use, as the semantic search tool does.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Annotated, Any, Protocol

from pydantic import BaseModel, ConfigDict, Field

from roost.coding.code_knowledge import CodeKnowledge
from roost.coding.edits import (
    FileChange,
    commit,
    plan_search_replace,
    plan_unified_diff,
    render,
    workspace_reader,
)
from roost.coding.repo_index import index_for
from roost.llm.base import RequestContext
from roost.llm.messages import Message, ModelSettings, Response
from roost.memory.knowledge import KnowledgeBase
from roost.tools.base import RiskLevel, Tool, ToolFailure, tool_from_function
from roost.tools.builtin.files import _read_text
from roost.tools.context import ToolContext
from roost.tools.toolsets import StaticToolset

_TAGS = frozenset({"coding"})


class SearchReplace(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str = Field(description="File relative to the workspace")
    search: str = Field(description="Exact text to find (once); empty to create a new file")
    replace: str = Field(description="Text to put in its place")


def _applied(ctx: ToolContext, changes: list[FileChange]) -> dict[str, Any]:
    commit(ctx.workspace, changes)
    return {
        "files": [c.path for c in changes],
        "deleted": [c.path for c in changes if c.is_deletion],
        "diff": render(changes),
    }


async def apply_edit(
    ctx: ToolContext,
    edits: Annotated[list[SearchReplace], Field(min_length=1, description="Edits, in order")],
) -> dict[str, Any]:
    """Apply search/replace edits to one or more files, all or nothing; returns the diff."""
    read = workspace_reader(ctx.workspace)
    changes = plan_search_replace(read, [e.model_dump() for e in edits])
    return _applied(ctx, changes)


async def apply_patch(
    ctx: ToolContext,
    diff: Annotated[str, Field(min_length=1, description="A unified diff (git diff format)")],
) -> dict[str, Any]:
    """Apply a unified diff, all files or none; a hunk that does not apply is reported."""
    return _applied(ctx, plan_unified_diff(workspace_reader(ctx.workspace), diff))


async def repo_map(
    ctx: ToolContext,
    max_symbols: Annotated[int, Field(ge=0, le=5000)] = 400,
) -> dict[str, Any]:
    """The repository's files with their classes, functions and methods."""
    return index_for(ctx.workspace.root).repo_map(max_symbols)


KnowledgeSource = Callable[[], KnowledgeBase | None]


def _code_search_tool(knowledge: KnowledgeSource | None) -> Tool:
    async def code_search(
        ctx: ToolContext,
        query: Annotated[
            str, Field(min_length=1, description="Words, identifiers or a description")
        ],
        k: Annotated[int, Field(ge=1, le=50)] = 8,
    ) -> dict[str, Any]:
        """Find the functions and classes (or files) that match the query, by its words and
        by meaning (the workspace's code is kept in the knowledge base)."""
        kb = knowledge() if knowledge is not None else None
        if kb is None:  # no memory in this deployment: keyword search only
            hits = await asyncio.to_thread(index_for(ctx.workspace.root).search, query, k)
            return {"query": query, "hits": hits, "index": "keyword"}
        code = CodeKnowledge(kb, ctx.tenant_id, ctx.workspace.root, ctx.agent_id or "default")
        await code.sync()
        return {"query": query, "hits": await code.search(query, k), "index": "keyword+semantic"}

    return tool_from_function(code_search, risk=RiskLevel.READ, idempotent=True, tags=_TAGS)


class ModelRequester(Protocol):
    async def request(
        self,
        model: str,
        messages: Any,
        settings: ModelSettings = ...,
        tools: Any = ...,
        *,
        context: RequestContext,
    ) -> Response: ...


AssistSource = Callable[[], "tuple[ModelRequester, str] | None"]


def _assist_tools(source: AssistSource) -> list[Tool]:
    async def ask(ctx: ToolContext, instruction: str, code: str, max_tokens: int) -> str:
        found = source()
        if found is None:
            raise ToolFailure("no model is configured for AI-assisted tools", type="unavailable")
        llm, model = found
        messages = [
            Message.system("You are a careful senior engineer. Answer with what is asked only."),
            Message.user(f"{instruction}\n\n```\n{code}\n```"),
        ]
        context = RequestContext(ctx.tenant_id, agent_id=ctx.agent_id, run_id=ctx.run_id)
        settings = ModelSettings(max_tokens=max_tokens, temperature=0)
        return (await llm.request(model, messages, settings, context=context)).text

    async def generate_tests(
        ctx: ToolContext,
        path: Annotated[str, Field(description="Module to test")],
        test_path: Annotated[str, Field(description="Where the test file would go")],
    ) -> dict[str, Any]:
        """Propose a unittest file for a module; returns the proposed diff (not applied)."""
        code = _read_text(ctx, path)
        module = path.removesuffix(".py").replace("/", ".")
        text = await ask(ctx, f"Write a Python unittest test file for module {module}. "
                         "Reply with the file's code only.", code, 512)  # fmt: skip
        proposed = _strip_fences(text)
        existing = workspace_reader(ctx.workspace)(test_path)
        return {"diff": FileChange(test_path, existing, proposed).diff(), "content": proposed}

    async def write_docstring(
        ctx: ToolContext,
        path: Annotated[str, Field(description="Source file")],
        symbol: Annotated[str, Field(description="Function or class name")],
    ) -> dict[str, Any]:
        """Propose a docstring for a function or class; returns it as text."""
        code = _symbol_code(ctx, path, symbol)
        text = await ask(ctx, f"Write a one-paragraph docstring for {symbol}. Reply with the "
                         "docstring text only, no quotes.", code, 160)  # fmt: skip
        return {"path": path, "symbol": symbol, "docstring": text.strip().strip('"').strip()}

    async def explain_code(
        ctx: ToolContext,
        path: Annotated[str, Field(description="Source file")],
        symbol: Annotated[str | None, Field(description="Limit to this function or class")] = None,
    ) -> dict[str, Any]:
        """Explain what a file (or one of its functions or classes) does, in plain words."""
        code = _symbol_code(ctx, path, symbol) if symbol else _read_text(ctx, path)[:12000]
        text = await ask(ctx, "Explain what this code does in a few sentences.", code, 256)
        return {"path": path, "symbol": symbol, "explanation": text.strip()}

    return [
        tool_from_function(f, risk=RiskLevel.READ, idempotent=True, timeout_s=300, tags=_TAGS)
        for f in (generate_tests, write_docstring, explain_code)
    ]


def _symbol_code(ctx: ToolContext, path: str, symbol: str) -> str:
    index = index_for(ctx.workspace.root)
    entry = index.files.get(path)
    if entry is None:
        raise ToolFailure(f"{path!r} is not a source file of the workspace", type="not_found")
    for chunk in entry.chunks:
        if chunk.symbol in (symbol, symbol.split(".")[-1]) or (
            chunk.symbol and chunk.symbol.endswith(f".{symbol}")
        ):
            return chunk.text
    raise ToolFailure(f"no function or class {symbol!r} in {path}", type="not_found")


def _strip_fences(text: str) -> str:
    lines = text.strip().splitlines()
    if lines and lines[0].startswith("```"):
        lines = lines[1:]
    if lines and lines[-1].startswith("```"):
        lines = lines[:-1]
    return "\n".join(lines) + "\n"


def coding_tools(
    assist: AssistSource | None = None, knowledge: KnowledgeSource | None = None
) -> list[Tool]:
    tools = [
        tool_from_function(apply_edit, risk=RiskLevel.WRITE, tags=_TAGS),
        tool_from_function(apply_patch, risk=RiskLevel.WRITE, tags=_TAGS),
        tool_from_function(repo_map, risk=RiskLevel.READ, idempotent=True, tags=_TAGS),
        _code_search_tool(knowledge),
    ]
    return tools + (_assist_tools(assist) if assist is not None else [])


def coding_toolset(
    assist: AssistSource | None = None, knowledge: KnowledgeSource | None = None
) -> StaticToolset:
    return StaticToolset(coding_tools(assist, knowledge))
