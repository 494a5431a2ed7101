"""/v1/embeddings reuses one embedder per process instead of building one per request."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from roost.llm import embeddings
from tests.server.conftest import AppFactory


class CountingEmbedder:
    """Stands in for MiniLM: counts how often it is built."""

    built = 0
    dimension = 384
    id = "counting"

    def __init__(self) -> None:
        time.sleep(0.01)  # widen the window in which two first callers could both build
        type(self).built += 1

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    async def embed(self, texts: Sequence[str]) -> embeddings.Vectors:
        vectors = np.ones((len(texts), self.dimension), dtype=np.float32)
        return embeddings.normalize(vectors)


def use_counting_embedder(monkeypatch: pytest.MonkeyPatch) -> type[CountingEmbedder]:
    CountingEmbedder.built = 0
    monkeypatch.setattr(embeddings, "MiniLMEmbedder", CountingEmbedder)
    monkeypatch.setattr(embeddings, "_shared_minilm", None)
    return CountingEmbedder


async def test_two_requests_share_one_embedder(
    monkeypatch: pytest.MonkeyPatch, make_app: AppFactory, auth: dict[str, str]
) -> None:
    async with make_app() as (_, client):
        counting = use_counting_embedder(monkeypatch)  # after start-up: memory has its own
        for text in ("a cat", "two small dogs"):
            reply = await client.post(
                "/v1/embeddings", json={"model": "all-MiniLM-L6-v2", "input": text}, headers=auth
            )
            assert reply.status_code == 200, reply.text
            assert len(reply.json()["data"][0]["embedding"]) == 384
        assert reply.json()["usage"] == {"prompt_tokens": 3, "total_tokens": 3}
    assert counting.built == 1


def test_threads_asking_at_once_build_one_embedder(monkeypatch: pytest.MonkeyPatch) -> None:
    counting = use_counting_embedder(monkeypatch)
    start = threading.Barrier(8)

    def first_use() -> object:
        start.wait()
        return embeddings.shared_minilm_embedder()

    with ThreadPoolExecutor(8) as pool:
        seen = list(pool.map(lambda _: first_use(), range(8)))
    assert counting.built == 1
    assert all(e is seen[0] for e in seen)
