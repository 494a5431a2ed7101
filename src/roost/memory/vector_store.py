"""The vector + text store behind every kind of memory, and what all its backends share.

A store holds *items*: a text, a vector of that text, and JSON metadata, filed under a
tenant and a namespace (``ltm:agent``, ``kb:collection``...). It is bound to one vector
space (embedder id + dimension): vectors from any other embedder are never compared with
it, and :meth:`VectorStore.stale` lists the items that need re-embedding after a change.

Search is vector similarity, BM25-style keyword ranking, or both fused by reciprocal rank
fusion. Metadata filters use a small language that every backend compiles to SQL:

- ``{"kind": "fact"}``: equal (strings, numbers, booleans)
- ``{"superseded_by": None}``: missing or null
- ``{"kind": {"$in": ["fact", "episode"]}}``, ``{"kind": {"$ne": "summary"}}``
- ``{"importance": {"$gte": 0.5}}`` with ``$gt``, ``$gte``, ``$lt``, ``$lte`` on numbers
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np

from roost.errors import InvalidRequest

SearchMode = Literal["vector", "keyword", "hybrid"]
Where = Mapping[str, Any]
RRF_K = 60  # the constant of Cormack et al.; damps the weight of the very top ranks
_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
_RANGE_OPS = {"$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}
_WORD = re.compile(r"\w+", re.UNICODE)
# Words too common to help a keyword ranking; dropping them keeps OR-queries selective.
STOPWORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "for",
        "from",
        "has",
        "have",
        "how",
        "i",
        "in",
        "is",
        "it",
        "its",
        "of",
        "on",
        "or",
        "that",
        "the",
        "this",
        "to",
        "was",
        "were",
        "what",
        "when",
        "where",
        "which",
        "who",
        "why",
        "will",
        "with",
        "you",
        "your",
        "do",
        "does",
        "did",
        "my",
        "me",
        "we",
        "our",
    ]
)


@dataclass(frozen=True, slots=True)
class VectorItem:
    """An item to store: its vector must come from the store's embedder."""

    id: str
    namespace: str
    text: str
    vector: np.ndarray
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class StoredItem:
    """An item as the store returns it."""

    id: str
    tenant_id: str
    namespace: str
    text: str
    metadata: dict[str, Any]
    embedder: str
    created_at: int
    updated_at: int


@dataclass(frozen=True, slots=True)
class SearchHit:
    """One result: fused score (higher is better) and the rank in each list it came from."""

    item: StoredItem
    score: float
    vector_rank: int | None = None  # 1-based
    keyword_rank: int | None = None
    similarity: float | None = None  # cosine similarity when the vector list found it


@runtime_checkable
class VectorStore(Protocol):
    """Items with vectors and text, searched by similarity, keywords or both."""

    @property
    def embedder_id(self) -> str: ...

    @property
    def dimension(self) -> int: ...

    async def upsert(self, tenant_id: str, items: Sequence[VectorItem]) -> None:
        """Insert or replace items by id (per tenant); replaces text, vector and metadata."""
        ...

    async def get(self, tenant_id: str, ids: Sequence[str]) -> list[StoredItem]:
        """The items among ``ids`` that exist, in the order asked."""
        ...

    async def list_items(
        self, tenant_id: str, namespace: str, where: Where | None = None, *, limit: int = 100
    ) -> list[StoredItem]:
        """Items of a namespace, oldest first."""
        ...

    async def count(self, tenant_id: str, namespace: str, where: Where | None = None) -> int: ...

    async def update_metadata(self, tenant_id: str, item_id: str, patch: Mapping[str, Any]) -> bool:
        """Merge ``patch`` into an item's metadata; False when there is no such item."""
        ...

    async def delete(self, tenant_id: str, ids: Sequence[str]) -> int:
        """Delete items by id; returns how many existed."""
        ...

    async def delete_where(self, tenant_id: str, namespace: str, where: Where | None = None) -> int:
        """Delete every item of a namespace that matches ``where``."""
        ...

    async def search(
        self,
        tenant_id: str,
        namespace: str,
        *,
        text: str = "",
        vector: np.ndarray | None = None,
        k: int = 10,
        mode: SearchMode = "hybrid",
        where: Where | None = None,
    ) -> list[SearchHit]:
        """The ``k`` best items by ``mode``; hybrid fuses both lists by reciprocal rank."""
        ...

    async def stale(self, tenant_id: str, namespace: str, *, limit: int = 500) -> list[StoredItem]:
        """Items whose vectors came from another embedder and must be re-embedded."""
        ...

    async def close(self) -> None: ...


def check_where(where: Where | None) -> list[tuple[str, str, Any]]:
    """Validate a filter and flatten it to ``(key, op, value)`` triples.

    ``op`` is one of ``eq``, ``null``, ``in``, ``ne`` or a range operator (``>`` ...).
    Raises :class:`InvalidRequest` naming the offending key.
    """
    clauses: list[tuple[str, str, Any]] = []
    for key, condition in (where or {}).items():
        if not _KEY.match(key):
            raise InvalidRequest(f"filter key {key!r} is not a plain identifier", param="where")
        if condition is None:
            clauses.append((key, "null", None))
        elif isinstance(condition, str | int | float | bool):
            clauses.append((key, "eq", condition))
        elif isinstance(condition, Mapping):
            for op, value in condition.items():
                if op == "$in":
                    if not isinstance(value, list | tuple) or not value:
                        raise InvalidRequest(f"{key}: $in needs a non-empty list", param="where")
                    clauses.append((key, "in", [_scalar(key, v) for v in value]))
                elif op == "$ne":
                    clauses.append((key, "ne", None if value is None else _scalar(key, value)))
                elif op in _RANGE_OPS:
                    if isinstance(value, bool) or not isinstance(value, int | float):
                        raise InvalidRequest(f"{key}: {op} needs a number", param="where")
                    clauses.append((key, _RANGE_OPS[op], value))
                else:
                    raise InvalidRequest(f"{key}: unknown operator {op!r}", param="where")
        else:
            raise InvalidRequest(f"{key}: unsupported filter value", param="where")
    return clauses


def _scalar(key: str, value: Any) -> Any:
    if isinstance(value, str | int | float | bool):
        return value
    raise InvalidRequest(f"{key}: filter values must be strings, numbers or booleans")


def fts_tokens(text: str, *, max_tokens: int = 32) -> list[str]:
    """The whitespace-separated tokens of a query that hold a searchable word, deduplicated.

    Each becomes one phrase, so ``ZX-4471`` or ``v2.3.1`` must match in order instead of as
    loose words; backends turn a token into a phrase with their own tokenizer.
    """
    seen: dict[str, None] = {}
    for token in text.split():
        if any(w not in STOPWORDS for w in _WORD.findall(token.lower())):
            seen.setdefault(token, None)
    return list(seen)[:max_tokens]


def fts_phrases(text: str) -> list[list[str]]:
    """The query as phrases of lower-cased words (see :func:`fts_tokens`), for FTS5."""
    phrases: dict[tuple[str, ...], None] = {}
    for token in fts_tokens(text):
        phrases.setdefault(
            tuple(w for w in _WORD.findall(token.lower()) if w not in STOPWORDS), None
        )
    return [list(p) for p in phrases]


KEYWORD_CUT = 0.7  # hybrid: keyword hits scoring below this share of the best one are dropped
FLAT_AT = 20  # hybrid: a keyword list whose 20th hit is still that close to the best says nothing


def informative_keywords(hits: Sequence[tuple[str, float]]) -> list[str]:
    """The keyword hits worth fusing: those close to the best score, unless the list is flat.

    A keyword list earns its place in a fusion by discriminating. When a query shares only
    common words with the corpus, dozens of documents score alike and plain RRF lets that
    noise outvote the vector list; when a rare term matches, a few documents stand out.
    """
    if not hits or hits[0][1] <= 0:
        return [item_id for item_id, _ in hits]
    floor = KEYWORD_CUT * hits[0][1]
    if len(hits) >= FLAT_AT and hits[FLAT_AT - 1][1] >= floor:
        return []
    return [item_id for item_id, score in hits if score >= floor]


def fuse(
    vector_hits: Sequence[tuple[str, float]],
    keyword_hits: Sequence[tuple[str, float]],
    *,
    k: int,
    rrf_k: int = RRF_K,
) -> list[tuple[str, float, int | None, int | None, float | None]]:
    """Reciprocal rank fusion of a vector list ``(id, similarity)`` and a keyword list
    ``(id, score)``, both best first.

    With both lists present only :func:`informative_keywords` take part, and ties go to the
    keyword list (an exact rare-term match beats an equally ranked neighbour). Returns
    ``(id, score, vector_rank, keyword_rank, similarity)`` for the best ``k`` ids.
    """
    keyword_ids = (
        informative_keywords(keyword_hits) if vector_hits else [i for i, _ in keyword_hits]
    )
    scores: dict[str, float] = {}
    vector_rank: dict[str, int] = {}
    similarity: dict[str, float] = {}
    keyword_rank: dict[str, int] = {}
    for rank, (item_id, sim) in enumerate(vector_hits, start=1):
        vector_rank[item_id] = rank
        similarity[item_id] = sim
        scores[item_id] = scores.get(item_id, 0.0) + 1.0 / (rrf_k + rank)
    for rank, item_id in enumerate(keyword_ids, start=1):
        keyword_rank[item_id] = rank
        scores[item_id] = scores.get(item_id, 0.0) + 1.0 / (rrf_k + rank)
    never = 1 << 30
    ordered = sorted(
        scores, key=lambda i: (-scores[i], keyword_rank.get(i, never), vector_rank.get(i, never))
    )
    return [
        (i, scores[i], vector_rank.get(i), keyword_rank.get(i), similarity.get(i))
        for i in ordered[:k]
    ]


def candidate_count(k: int) -> int:
    """How deep each list goes before fusion: deep enough that fusion can reorder the top."""
    return max(4 * k, 40)


def check_vector(vector: np.ndarray, dimension: int) -> np.ndarray:
    """The vector as contiguous float32, or InvalidRequest when its size is wrong."""
    array = np.ascontiguousarray(vector, dtype=np.float32).reshape(-1)
    if array.shape[0] != dimension:
        raise InvalidRequest(f"vector has {array.shape[0]} dimensions, the store has {dimension}")
    return array
