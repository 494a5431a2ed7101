"""Memory fixtures: the hashing embedder. (The pgvector server is in tests/conftest.py;
the vector stores on every backend in tests/conformance/test_vector_store.py.)"""

from __future__ import annotations

import pytest

from roost.llm.embeddings import HashingEmbedder


@pytest.fixture
def embedder() -> HashingEmbedder:
    return HashingEmbedder(64)


# The in-process server app of tests/server, for the server's knowledge syncer.
from tests.server.conftest import auth, make_app  # noqa: E402, F401
