"""Semantic code search through the knowledge base, when the deployment has one.

``roost.tools`` does not import the memory layer (they are siblings); the server hands
this module a search function at start-up. Without one the tool says so plainly.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from pydantic import Field

from roost.tools.base import RiskLevel, Tool, ToolFailure, tool_from_function
from roost.tools.context import ToolContext

# (tenant_id, collection, query, k) -> hits as plain dicts (text, uri, lines, score)
KnowledgeSearch = Callable[[str, str, str, int], Awaitable[list[dict[str, Any]]]]


def semantic_search_tool(search: Callable[[], KnowledgeSearch | None]) -> Tool:
    """``search_code_semantic``: ``search()`` returns the knowledge search, or None if absent."""

    async def search_code_semantic(
        ctx: ToolContext,
        query: Annotated[str, Field(min_length=1, description="What the code does, in words")],
        collection: Annotated[str, Field(description="Knowledge collection of the code")] = "code",
        k: Annotated[int, Field(ge=1, le=50)] = 8,
    ) -> dict[str, Any]:
        """Find code by meaning in an indexed knowledge collection; hits cite file and lines."""
        searcher = search()
        if searcher is None:
            raise ToolFailure("no knowledge base is configured on this server", type="unavailable")
        return {"query": query, "hits": await searcher(ctx.tenant_id, collection, query, k)}

    return tool_from_function(
        search_code_semantic, risk=RiskLevel.READ, idempotent=True, tags=frozenset({"search"})
    )
