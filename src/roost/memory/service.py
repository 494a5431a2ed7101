"""All of memory for one deployment, opened from settings, and the calls agents make.

The server, the CLI and the agents runtime build one :class:`MemoryServices` and use its
parts (``short_term``, ``long_term``, ``procedural``, ``consolidator``, ``knowledge``) or
the three agent-facing calls: :meth:`MemoryServices.remember`,
:meth:`MemoryServices.recall` and :meth:`MemoryServices.search_knowledge`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from opentelemetry.trace import Span

from roost.config import Settings
from roost.llm.embeddings import Embedder, create_embedder
from roost.memory.chunking import ChunkingPolicy
from roost.memory.consolidation import ConsolidationPolicy, Consolidator, Summarizer
from roost.memory.embedding_cache import CachedEmbedder
from roost.memory.knowledge import KnowledgeBase, KnowledgeHit
from roost.memory.long_term import KINDS, LongTermMemory, Memory, Recalled
from roost.memory.pg_store import PgVectorStore
from roost.memory.procedural import ProceduralMemory
from roost.memory.schema import MEMORY_MIGRATIONS
from roost.memory.short_term import (
    InProcessShortTermStore,
    ShortTermMemory,
    ShortTermStore,
    TokenCounter,
    Turn,
    approximate_tokens,
)
from roost.memory.short_term_stores import RedisShortTermStore, SqlShortTermStore
from roost.memory.sqlite_store import SqliteVectorStore
from roost.memory.vector_store import VectorStore
from roost.observe.logging import get_logger
from roost.observe.tracing import get_tracer
from roost.storage import Database, migrate
from roost.storage.redis import RedisClient
from roost.tools.netguard import NetworkPolicy

log = get_logger("roost.memory")
_tracer = get_tracer("roost.memory")

# JSON schemas of the memory tools, for the agents runtime to register as tools.
TOOL_SCHEMAS: dict[str, dict[str, Any]] = {
    "remember": {
        "description": "Store a fact worth remembering across conversations.",
        "parameters": {
            "type": "object",
            "properties": {
                "text": {"type": "string", "description": "The fact, as one sentence"},
                "importance": {"type": "number", "minimum": 0, "maximum": 1},
                "kind": {"type": "string", "enum": list(KINDS)},
            },
            "required": ["text"],
        },
    },
    "recall": {
        "description": "Find remembered facts and past episodes relevant to a query.",
        "parameters": {
            "type": "object",
            "properties": {
                "query": {"type": "string"},
                "k": {"type": "integer", "minimum": 1, "maximum": 20},
            },
            "required": ["query"],
        },
    },
    "search_knowledge": {
        "description": "Search a knowledge-base collection; results cite their source.",
        "parameters": {
            "type": "object",
            "properties": {
                "collection": {"type": "string"},
                "query": {"type": "string"},
                "k": {"type": "integer", "minimum": 1, "maximum": 20},
            },
            "required": ["collection", "query"],
        },
    },
}


@dataclass(slots=True)
class MemoryServices:
    embedder: Embedder
    store: VectorStore
    short_term: ShortTermMemory
    long_term: LongTermMemory
    procedural: ProceduralMemory
    consolidator: Consolidator
    knowledge: KnowledgeBase

    @classmethod
    async def open(
        cls,
        settings: Settings,
        database: Database,
        redis: RedisClient | None = None,
        *,
        embedder: Embedder | None = None,
        summarizer: Summarizer | None = None,
        count_tokens: TokenCounter | None = None,
    ) -> MemoryServices:
        """Migrate, open the vector store and wire every memory service.

        ``count_tokens`` should be the serving model's tokenizer (short-term budgets);
        ``summarizer`` an LLM-backed one (defaults to the extractive summarizer).
        """
        cfg = settings.memory
        embedder = embedder or create_embedder(cfg.embedder)
        await migrate(database, MEMORY_MIGRATIONS)
        cached = settings.cache.embeddings
        if cached.enabled:
            embedder = CachedEmbedder(
                embedder, database, max_entries=cached.max_entries, ttl_s=cached.ttl_s
            )
        backend = cfg.vector_backend
        if backend == "auto":
            backend = "sqlite"
            if database.dialect == "postgresql":
                if await _has_pgvector(database):
                    backend = "postgres"
                else:
                    log.warning("memory.no_pgvector", fallback="embedded SQLite vector file")
        store: VectorStore
        if backend == "postgres":
            store = await PgVectorStore.open(
                database, embedder_id=embedder.id, dimension=embedder.dimension
            )
        else:
            path = cfg.vector_path or settings.home / "memory.db"
            store = await asyncio.to_thread(
                SqliteVectorStore, path, embedder_id=embedder.id, dimension=embedder.dimension,
                cache_vectors=settings.cache.vector_cache_vectors,
            )  # fmt: skip
        stm_backend = cfg.short_term_backend
        if stm_backend == "auto":
            stm_backend = "redis" if redis is not None else "sql"
        stm_store: ShortTermStore
        if stm_backend == "redis":
            if redis is None:
                raise ValueError("memory.short_term_backend = 'redis' needs storage.redis_url")
            stm_store = RedisShortTermStore(redis)
        elif stm_backend == "memory":
            stm_store = InProcessShortTermStore()
        else:
            stm_store = SqlShortTermStore(database)
        short_term = ShortTermMemory(
            stm_store,
            max_tokens=cfg.short_term_max_tokens,
            count_tokens=count_tokens or approximate_tokens,
            ttl_s=cfg.short_term_ttl_s,
        )
        long_term = LongTermMemory(store, embedder)
        consolidator = Consolidator(
            database, short_term, long_term, summarizer=summarizer,
            policy=ConsolidationPolicy(max_summary_calls=cfg.max_summary_calls),
        )  # fmt: skip
        knowledge = KnowledgeBase(
            database, store, embedder,
            policy=ChunkingPolicy(cfg.chunk_tokens, min(cfg.chunk_overlap_tokens, cfg.chunk_tokens // 2 - 1)),
            network=_url_policy(settings),
        )  # fmt: skip
        services = cls(
            embedder,
            store,
            short_term,
            long_term,
            ProceduralMemory(store, embedder),
            consolidator,
            knowledge,
        )
        await consolidator.recover()  # finish batches a crash interrupted
        return services

    async def close(self) -> None:
        await self.store.close()

    # The calls agents make --------------------------------------------------------------

    async def remember(
        self, tenant_id: str, agent_id: str, text: str, *, kind: str = "fact", importance: float = 0.5,
        source: Mapping[str, Any] | None = None,
    ) -> Memory:  # fmt: skip
        """Store a memory for an agent (the ``remember`` tool)."""
        with _span("memory remember", tenant_id, agent_id):
            return await self.long_term.remember(
                tenant_id,
                agent_id,
                text,
                kind=kind,
                importance=importance,
                source=dict(source or {}),
            )

    async def recall(
        self, tenant_id: str, agent_id: str, query: str, *, k: int = 5
    ) -> list[Recalled]:
        """An agent's memories best for ``query`` (the ``recall`` tool)."""
        with _span("memory recall", tenant_id, agent_id) as span:
            found = await self.long_term.recall(tenant_id, agent_id, query, k=k)
            span.set_attribute("roost.memory.results", len(found))
            return found

    async def search_knowledge(
        self, tenant_id: str, collection: str, query: str, *, k: int = 5
    ) -> list[KnowledgeHit]:
        """Cited chunks of a knowledge collection (the ``search_knowledge`` tool)."""
        with _span("knowledge search", tenant_id, None) as span:
            span.set_attribute("roost.knowledge.collection", collection)
            hits = await self.knowledge.search(tenant_id, collection, query, k=k)
            span.set_attribute("roost.memory.results", len(hits))
            return hits

    async def add_turn(
        self, tenant_id: str, thread_id: str, agent_id: str, role: str, content: str,
        *, metadata: Mapping[str, Any] | None = None, turn_id: str | None = None,
    ) -> Turn:  # fmt: skip
        """Append a message to a thread's window; consolidate when it exceeds the budget."""
        turn = await self.short_term.add(
            tenant_id, thread_id, role, content, turn_id=turn_id,
            metadata={"agent_id": agent_id, **dict(metadata or {})},
        )  # fmt: skip
        if await self.short_term.total_tokens(tenant_id, thread_id) > self.short_term.max_tokens:
            await self.consolidator.consolidate(tenant_id, thread_id, agent_id)
        return turn

    async def context(
        self, tenant_id: str, thread_id: str, agent_id: str, query: str, *, k: int = 5
    ) -> tuple[list[Turn], list[Recalled]]:
        """What to put in front of a model: the thread window and the memories for ``query``."""
        with _span("memory context", tenant_id, agent_id):
            window = await self.short_term.window(tenant_id, thread_id)
            return window, await self.recall(tenant_id, agent_id, query, k=k)

    async def call_tool(
        self, tenant_id: str, agent_id: str, name: str, arguments: Mapping[str, Any]
    ) -> Any:
        """Run one memory tool by name with JSON arguments; returns JSON-ready data."""
        if name == "remember":
            memory = await self.remember(
                tenant_id, agent_id, str(arguments["text"]),
                kind=str(arguments.get("kind", "fact")), importance=float(arguments.get("importance", 0.5)),
            )  # fmt: skip
            return {"id": memory.id, "text": memory.text}
        if name == "recall":
            found = await self.recall(
                tenant_id, agent_id, str(arguments["query"]), k=int(arguments.get("k", 5))
            )
            return [
                {
                    "id": r.memory.id,
                    "text": r.memory.text,
                    "kind": r.memory.kind,
                    "score": round(r.score, 4),
                }
                for r in found
            ]
        if name == "search_knowledge":
            hits = await self.search_knowledge(
                tenant_id,
                str(arguments["collection"]),
                str(arguments["query"]),
                k=int(arguments.get("k", 5)),
            )
            return [
                {"text": h.text, "citation": h.citation, "score": round(h.score, 4)} for h in hits
            ]
        raise KeyError(f"no memory tool {name!r}")


@contextmanager
def _span(name: str, tenant_id: str, agent_id: str | None) -> Iterator[Span]:
    """A span per memory or knowledge call, filed under the tenant (and agent)."""
    with _tracer.start_as_current_span(name) as span:
        span.set_attribute("roost.tenant_id", tenant_id)
        if agent_id:
            span.set_attribute("gen_ai.agent.id", agent_id)
        yield span


async def _has_pgvector(database: Database) -> bool:
    row = await database.fetch_one(
        "SELECT 1 AS ok FROM pg_available_extensions WHERE name = 'vector'"
    )
    return row is not None


async def consolidate_periodically(
    services: MemoryServices,
    tenant_ids: Callable[[], Awaitable[Sequence[str]]],
    interval_s: float,
) -> None:
    """The background job: sweep every tenant's threads each ``interval_s`` seconds."""
    while True:
        await asyncio.sleep(interval_s)
        for tenant_id in await tenant_ids():
            try:
                await services.consolidator.sweep(tenant_id)
            except Exception:  # one tenant's failure must not stop the others' consolidation
                log.exception("memory.consolidation_failed", tenant_id=tenant_id)


def _url_policy(settings: Settings) -> NetworkPolicy | None:
    """Where knowledge URLs may be fetched from: the tools' http_fetch policy (public hosts,
    plus the networks the operator exempts), or nowhere when URL sources are off."""
    if not settings.memory.knowledge_urls:
        return None
    tools = settings.tools
    return NetworkPolicy(
        allowed_hosts=frozenset(tools.http_allowed_hosts),
        allowed_networks=tuple(tools.http_allowed_networks),
    )
