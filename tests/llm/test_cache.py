"""Response cache: store expiry, exact-tier keys, semantic-tier eligibility and
partitioning, and cache hits through the service. (The store contract on every backend:
tests/conformance/test_response_cache_store.py.)"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Sequence
from pathlib import Path

import pytest

from roost.llm.base import RequestContext
from roost.llm.cache import DatabaseCacheStore, MemoryCacheStore, ResponseCache
from roost.llm.messages import Message, ModelSettings, ResponseDone, TextDelta, ToolDefinition
from roost.llm.providers import ProviderRegistry
from roost.llm.router import Router
from roost.llm.schema import LLM_MIGRATIONS
from roost.llm.service import CallOptions, LLMService
from roost.llm.testing import TestModel
from roost.llm.usage import UsageStore
from roost.storage import Database, migrate


class WordEmbedder:
    """Bag of words hashed into 64 dimensions: identical word sets embed identically."""

    id = "words-64"

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        vectors = []
        for text in texts:
            vector = [0.0] * 64
            for word in re.findall(r"[a-z']+", text.lower()):
                vector[int(hashlib.md5(word.encode()).hexdigest(), 16) % 64] += 1.0
            norm = math.sqrt(sum(x * x for x in vector)) or 1.0
            vectors.append([x / norm for x in vector])
        return vectors


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_memory_store_expires_and_evicts() -> None:
    clock = Clock()
    store = MemoryCacheStore(max_entries=2, clock=clock)
    await store.put("a", "1", 10, tenant_id="t", partition="p", vector=[1.0])
    clock.now = 10
    assert await store.get("a") is None
    assert await store.nearest("p", [1.0]) is None
    await store.put("b", "2", 10, tenant_id="t")
    await store.put("c", "3", 10, tenant_id="t")
    await store.get("b")  # b is now the most recently used
    await store.put("d", "4", 10, tenant_id="t")
    assert await store.get("c") is None
    assert await store.get("b") == "2"


async def test_database_store_expires_by_its_clock(tmp_path: Path) -> None:
    db = await Database.connect(f"sqlite:///{tmp_path / 'c.db'}")
    await migrate(db, LLM_MIGRATIONS)
    now = [1_000_000]
    store = DatabaseCacheStore(db, clock_ms=lambda: now[0])
    await store.put("a", "1", 5, tenant_id="t", partition="p", vector=[1.0])
    now[0] += 5_000
    assert await store.get("a") is None
    assert await store.nearest("p", [1.0]) is None
    assert await store.purge_expired() == 1
    await db.close()


HELLO = [Message.system("be kind"), Message.user("how do I bake bread")]


def make_cache(**kwargs: object) -> ResponseCache:
    return ResponseCache(MemoryCacheStore(), embedder=WordEmbedder(), **kwargs)  # type: ignore[arg-type]


def test_exact_key_covers_tenant_model_messages_tools_and_sampling() -> None:
    cache = make_cache()
    base = cache.exact_key("t1", "chat", HELLO, ModelSettings(), ())
    assert base == cache.exact_key("t1", "chat", list(HELLO), ModelSettings(timeout_s=3), ())
    assert base != cache.exact_key("t2", "chat", HELLO, ModelSettings(), ())
    assert base != cache.exact_key("t1", "other", HELLO, ModelSettings(), ())
    assert base != cache.exact_key("t1", "chat", HELLO, ModelSettings(temperature=0.5), ())
    assert base != cache.exact_key("t1", "chat", HELLO, ModelSettings(), (ToolDefinition("x"),))
    assert base != cache.exact_key("t1", "chat", HELLO[1:], ModelSettings(), ())


@pytest.mark.parametrize(
    ("messages", "tools", "why"),
    [
        ([Message.user("what is 12 times 7")], (), "numbers"),
        ([Message.user("email bob@example.com about it")], (), "personal data"),
        ([Message.user("hi"), Message.assistant("hello"), Message.user("and?")], (), "multi-turn"),
        ([Message.user("what's the weather")], (ToolDefinition("weather"),), "tools"),
    ],
)
def test_semantic_tier_skips_risky_requests(
    messages: list[Message], tools: tuple[ToolDefinition, ...], why: str
) -> None:
    assert make_cache().semantic_query(messages, tools) is None, why


def test_numbers_and_pii_can_be_allowed() -> None:
    cache = make_cache(allow_numbers=True, allow_pii=True)
    assert cache.semantic_query([Message.user("what is 12 times 7")], ()) is not None


def test_negations_and_system_prompts_split_partitions() -> None:
    cache = make_cache()
    settings = ModelSettings()

    def part(messages: list[Message]) -> str:
        query = cache.semantic_query(messages, ())
        assert query is not None
        return cache.partition("t1", "chat", messages, settings, query)

    plain = part([Message.user("is it safe to swim here")])
    assert plain == part([Message.user("is swimming here safe")])
    assert plain != part([Message.user("is it not safe to swim here")])
    assert plain != part([Message.user("isn't it safe to swim here")])
    assert plain != part(
        [Message.system("answer in French"), Message.user("is it safe to swim here")]
    )


async def test_semantic_hit_needs_the_threshold() -> None:
    cache = make_cache(similarity_threshold=0.95)
    settings = ModelSettings()
    model = TestModel(output_text="knead, rise, bake")
    response = await model.request(HELLO)
    await cache.put("t1", "chat", HELLO, settings, (), response)
    reordered = [HELLO[0], Message.user("bake bread: how do I")]  # same words, new order
    hit = await cache.lookup("t1", "chat", reordered, settings)
    assert hit is not None and hit.tier == "semantic"
    assert hit.response.text == "knead, rise, bake"
    assert (
        await cache.lookup("t1", "chat", [HELLO[0], Message.user("how do I bake cake")], settings)
        is None
    )
    assert await cache.lookup("t2", "chat", reordered, settings) is None  # other tenant
    exact = await cache.lookup("t1", "chat", HELLO, settings)
    assert exact is not None and exact.tier == "exact"
    assert cache.stats.hit_rate == pytest.approx(2 / 4)


async def test_service_answers_repeats_from_the_cache(tmp_path: Path) -> None:
    db = await Database.connect(f"sqlite:///{tmp_path / 'u.db'}")
    await migrate(db, LLM_MIGRATIONS)
    model = TestModel("test:m", output_text="cached answer")
    registry = ProviderRegistry(env={})
    registry.register(model)
    router = Router(registry)
    router.add_group("chat", [("test:m", 1.0)])
    service = LLMService(router, usage=UsageStore(db), cache=ResponseCache(MemoryCacheStore()))
    context = RequestContext("t1")
    first = await service.request("chat", HELLO, context=context)
    second = await service.request("chat", HELLO, context=context)
    events = [e async for e in service.request_stream("chat", HELLO, context=context)]
    assert first.text == second.text == "cached answer"
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["cached answer"]
    assert isinstance(events[-1], ResponseDone)
    assert len(model.calls) == 1
    await service.request("chat", HELLO, context=context, options=CallOptions(use_cache=False))
    assert len(model.calls) == 2
    summary = await UsageStore(db).summary("t1", since_ms=0)
    [row] = summary["rows"]  # type: ignore[misc]
    assert (row["calls"], row["cache_hits"]) == (4, 2)
    await db.close()


async def test_streamed_answers_are_cached_too() -> None:
    model = TestModel("test:m", output_text="streamed")
    registry = ProviderRegistry(env={})
    registry.register(model)
    router = Router(registry)
    router.add_group("chat", [("test:m", 1.0)])
    service = LLMService(router, cache=ResponseCache(MemoryCacheStore()))
    context = RequestContext("t1")
    [e async for e in service.request_stream("chat", HELLO, context=context)]
    assert (await service.request("chat", HELLO, context=context)).text == "streamed"
    assert len(model.calls) == 1
