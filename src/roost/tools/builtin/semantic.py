"""Search through the knowledge base, when the deployment has one: code by meaning
(``search_code_semantic``) and documents with citations (``search_knowledge``).

``roost.tools`` does not import the memory layer (they are siblings); the server hands
this module a search function at start-up. Without one the tool says so plainly.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from pydantic import Field

from roost.tools.base import RiskLevel, Tool, ToolFailure, tool_from_function
from roost.tools.context import ToolContext

# (tenant_id, collection or None for all, query, k) -> hits as plain dicts (text, uri,
# lines, score)
KnowledgeSearch = Callable[[str, str | None, str, int], Awaitable[list[dict[str, Any]]]]


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


KNOWLEDGE_RESULTS = 3
# Words, not code or markup: also the grammar of a model's call, which keeps a small
# model from filling the query with punctuation runs.
QUERY_PATTERN = r"^[A-Za-z0-9' ,?-]+$"


def knowledge_search_tool(search: Callable[[], KnowledgeSearch | None]) -> Tool:
    """``search_knowledge``: ``search()`` returns the knowledge search, or None if absent."""

    # One argument on purpose: every optional one is a chance for a small model to fill
    # in nonsense (a made-up collection name), and the grammar lets it.
    async def search_knowledge(
        ctx: ToolContext,
        query: Annotated[
            str, Field(min_length=1, max_length=80, pattern=QUERY_PATTERN, description="Key words")
        ],
    ) -> dict[str, Any]:
        """Search every knowledge collection; each result is '[source] text', the source
        to cite."""
        searcher = search()
        if searcher is None:
            raise ToolFailure("no knowledge base is configured on this server", type="unavailable")
        hits = await searcher(ctx.tenant_id, None, query, KNOWLEDGE_RESULTS)
        # Each result opens with its source in brackets: a model that quotes the result
        # (small ones do) quotes the citation with it.
        return {"results": [f"[{_citation(hit)}] {' '.join(str(hit['text']).split())}"
                            for hit in hits]}  # fmt: skip

    return tool_from_function(
        search_knowledge, risk=RiskLevel.READ, idempotent=True, tags=frozenset({"search"})
    )


def _citation(hit: dict[str, Any]) -> str:
    uri = str(hit["uri"]).rsplit("/", 1)[-1]
    start, end = hit.get("line_start"), hit.get("line_end")
    if start is None:
        return uri
    return f"{uri}:{start}" if start == end or end is None else f"{uri}:{start}-{end}"
