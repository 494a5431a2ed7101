"""Memory fixtures: the hashing embedder. (The pgvector server is in tests/conftest.py;
the vector stores on every backend in tests/conformance/test_vector_store.py.)"""

from __future__ import annotations

import pytest

from roost.llm.embeddings import HashingEmbedder


@pytest.fixture
def embedder() -> HashingEmbedder:
    return HashingEmbedder(64)
