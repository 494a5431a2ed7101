"""Recently embedded texts are not embedded again; rows keep their order; bounded."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from roost.llm.recent_vectors import RecentVectors, Vectors


def fake_model(calls: list[list[str]]) -> Callable[[list[str]], Vectors]:
    def compute(texts: list[str]) -> Vectors:
        calls.append(list(texts))
        return np.array([[float(len(t)), float(ord(t[0]))] for t in texts], dtype=np.float32)

    return compute


def test_repeats_are_served_from_memory_in_order() -> None:
    calls: list[list[str]] = []
    recent = RecentVectors(capacity=8)
    first = recent.embed(["ab", "c", "ab"], fake_model(calls))
    assert calls == [["ab", "c"]]  # a text repeated within one batch is computed once
    assert first.tolist() == [[2, 97], [1, 99], [2, 97]]
    second = recent.embed(["c", "dd"], fake_model(calls))
    assert calls[-1] == ["dd"]
    assert second.tolist() == [[1, 99], [2, 100]]
    assert (recent.hits, recent.misses) == (2, 3)


def test_the_least_recently_used_text_goes_first_and_vectors_are_read_only() -> None:
    calls: list[list[str]] = []
    recent = RecentVectors(capacity=2)
    recent.embed(["a", "b"], fake_model(calls))
    recent.embed(["a"], fake_model(calls))  # "a" is now the most recent
    recent.embed(["c"], fake_model(calls))  # evicts "b"
    recent.embed(["a", "b"], fake_model(calls))
    assert calls == [["a", "b"], ["c"], ["b"]]
    rows = recent.embed(["a"], fake_model(calls))
    rows[0, 0] = 42.0  # the caller's copy, not the cached vector
    assert recent.embed(["a"], fake_model(calls)).tolist() == [[1, 97]]


@pytest.mark.slow
def test_the_minilm_embedder_reuses_a_recent_text() -> None:
    from roost.llm.embeddings import MiniLMEmbedder

    embedder = MiniLMEmbedder()
    once = embedder.embed_sync(["a roost is where birds rest"])
    again = embedder.embed_sync(["a roost is where birds rest", "something else"])
    assert np.allclose(once[0], again[0])
    assert embedder.recent.hits == 1 and embedder.recent.misses == 2
