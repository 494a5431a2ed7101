"""The response cache: an exact tier and an opt-in semantic tier.

Exact: the key hashes tenant, model and the whole normalised request (messages, tools,
sampling), so only an identical request hits. Semantic: a single-turn question whose
embedding is at least ``similarity_threshold`` similar to a cached one, compared only
within a partition of the same tenant, model, system prompt, sampling, embedder and
negation words, so "is X safe" never answers "is X not safe". Requests with tools,
multi-turn conversations, images, and (unless allowed) numbers or personal data skip
the semantic tier: those are where near-misses give wrong answers. A semantic match
must also keep the content words both questions share in the same order.
"""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from roost.llm import telemetry
from roost.llm.cache.codec import digest, request_identity, response_from_json, response_to_json
from roost.llm.cache.stores import CacheStore
from roost.llm.messages import ImagePart, Message, ModelSettings, Response, ToolDefinition

_DIGITS = re.compile(r"\d")
_PII = re.compile(
    r"[\w.+-]+@[\w-]+\.[\w.-]+"  # e-mail
    r"|\+?\d[\d ()-]{7,}\d"  # phone-like runs of digits
    r"|\b(?:\d{1,3}\.){3}\d{1,3}\b",  # IPv4
)
_NEGATIONS = frozenset(
    {"not", "no", "never", "none", "nor", "neither", "without", "cannot", "nothing", "nobody"}
)
_WORDS = re.compile(r"[a-z]+(?:'[a-z]+)?")


class TextEmbedder(Protocol):
    """Anything with ``embed(texts)`` returning one vector per text (sync or async,
    lists or a numpy array). An ``id`` attribute, when present, versions the vectors."""

    def embed(self, texts: Sequence[str]) -> Any: ...


@dataclass(frozen=True, slots=True)
class CacheHit:
    response: Response
    tier: Literal["exact", "semantic"]
    similarity: float = 1.0


@dataclass(slots=True)
class CacheStats:
    num_exact_hits: int = 0
    num_semantic_hits: int = 0
    num_misses: int = 0

    @property
    def hit_rate(self) -> float:
        total = self.num_exact_hits + self.num_semantic_hits + self.num_misses
        return (self.num_exact_hits + self.num_semantic_hits) / total if total else 0.0


class ResponseCache:
    """Look up and store responses; see the module docstring for the rules."""

    def __init__(
        self,
        store: CacheStore,
        *,
        ttl_s: float = 3600.0,
        embedder: TextEmbedder | None = None,
        similarity_threshold: float = 0.95,
        allow_numbers: bool = False,
        allow_pii: bool = False,
    ) -> None:
        self.store = store
        self.ttl_s = ttl_s
        self.embedder = embedder
        self.similarity_threshold = similarity_threshold
        self.allow_numbers = allow_numbers
        self.allow_pii = allow_pii
        self.stats = CacheStats()
        self.embedder_id = str(getattr(embedder, "id", type(embedder).__name__))

    def exact_key(
        self,
        tenant_id: str,
        model: str,
        messages: Sequence[Message],
        settings: ModelSettings,
        tools: Sequence[ToolDefinition],
    ) -> str:
        identity = request_identity(messages, settings, tools)
        return "x:" + digest({"tenant": tenant_id, "model": model, **identity})

    def semantic_query(
        self, messages: Sequence[Message], tools: Sequence[ToolDefinition]
    ) -> str | None:
        """The text to embed when the request may use the semantic tier, else None."""
        if self.embedder is None or tools:
            return None
        turns = [m for m in messages if m.role != "system"]
        if len(turns) != 1 or turns[0].role != "user":
            return None
        if any(isinstance(p, ImagePart) for m in messages for p in m.parts):
            return None
        text = turns[0].text.strip()
        if not text:
            return None
        if not self.allow_numbers and _DIGITS.search(text):
            return None
        if not self.allow_pii and _PII.search(text):
            return None
        return text

    def partition(
        self,
        tenant_id: str,
        model: str,
        messages: Sequence[Message],
        settings: ModelSettings,
        query: str,
    ) -> str:
        system = "\n".join(m.text for m in messages if m.role == "system")
        sampling = request_identity((), settings, ())["settings"]
        words = set(_WORDS.findall(query.lower()))
        negations = sorted(
            w for w in words if w in _NEGATIONS or w.endswith("n't")
        )  # a negated question is a different question
        return "s:" + digest(
            {
                "tenant": tenant_id,
                "model": model,
                "system": digest(system),
                "settings": sampling,
                "embedder": self.embedder_id,
                "negations": negations,
            }
        )

    async def lookup(
        self,
        tenant_id: str,
        model: str,
        messages: Sequence[Message],
        settings: ModelSettings,
        tools: Sequence[ToolDefinition] = (),
        *,
        key: str | None = None,
    ) -> CacheHit | None:
        """A cached answer to this request, or None (``key``: its :meth:`exact_key`, if known)."""
        key = key or self.exact_key(tenant_id, model, messages, settings, tools)
        raw = await self.store.get(key)
        if raw is not None:
            self.stats.num_exact_hits += 1
            telemetry.LLM_CACHE.labels("exact", "hit").inc()
            return CacheHit(response_from_json(json.loads(raw)["r"]), "exact")
        query = self.semantic_query(messages, tools)
        if query is not None:
            vector = await self._embed(query)
            part = self.partition(tenant_id, model, messages, settings, query)
            near = await self.store.nearest(part, vector)
            if near is not None and near.similarity >= self.similarity_threshold:
                entry = json.loads(near.value)
                if same_word_order(query, entry["q"] or ""):
                    self.stats.num_semantic_hits += 1
                    telemetry.LLM_CACHE.labels("semantic", "hit").inc()
                    return CacheHit(response_from_json(entry["r"]), "semantic", near.similarity)
        self.stats.num_misses += 1
        telemetry.LLM_CACHE.labels("exact" if query is None else "semantic", "miss").inc()
        return None

    async def put(
        self,
        tenant_id: str,
        model: str,
        messages: Sequence[Message],
        settings: ModelSettings,
        tools: Sequence[ToolDefinition],
        response: Response,
        *,
        key: str | None = None,
    ) -> None:
        """Remember ``response``; failed or truncated-by-filter answers are not kept."""
        if response.finish_reason in ("error", "cancelled", "content_filter"):
            return
        key = key or self.exact_key(tenant_id, model, messages, settings, tools)
        query = self.semantic_query(messages, tools)
        # The question is kept beside the answer so a semantic match can be double-checked.
        value = json.dumps({"q": query, "r": response_to_json(response)})
        if query is None:
            await self.store.put(key, value, self.ttl_s, tenant_id=tenant_id)
            return
        vector = await self._embed(query)
        part = self.partition(tenant_id, model, messages, settings, query)
        await self.store.put(
            key, value, self.ttl_s, tenant_id=tenant_id, partition=part, vector=vector
        )

    async def _embed(self, text: str) -> list[float]:
        assert self.embedder is not None
        result = self.embedder.embed([text])
        if inspect.isawaitable(result):
            result = await result
        return [float(x) for x in result[0]]


# Words that carry no content; everything else must keep its relative order.
_STOPWORDS = frozenset(
    [
        "a",
        "an",
        "the",
        "to",
        "of",
        "in",
        "on",
        "at",
        "for",
        "from",
        "by",
        "with",
        "and",
        "or",
        "is",
        "are",
        "was",
        "were",
        "be",
        "do",
        "does",
        "did",
        "can",
        "could",
        "how",
        "what",
        "which",
        "who",
        "whom",
        "whose",
        "why",
        "when",
        "where",
        "i",
        "you",
        "we",
        "me",
        "my",
        "your",
        "our",
        "it",
        "its",
        "this",
        "that",
        "these",
        "those",
        "please",
        "some",
        "any",
        "into",
        "about",
        "as",
        "s",
    ]
)


def content_words(text: str) -> list[str]:
    return [w for w in _WORDS.findall(text.lower()) if w not in _STOPWORDS]


def same_word_order(query: str, cached: str) -> bool:
    """True unless the content words both texts share appear in a different order.

    Embeddings barely see word order: "convert Celsius to Fahrenheit" and "convert
    Fahrenheit to Celsius" embed almost identically yet ask opposite things.
    """
    left, right = content_words(query), content_words(cached)
    shared = set(left) & set(right)
    return [w for w in left if w in shared] == [w for w in right if w in shared]
