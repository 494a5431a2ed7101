"""Batched ingestion keeps the vectors: chunks of many files embedded together, sorted by
length, get the vectors each chunk gets alone; and the chunker's own tokenizer counts
exactly as the model's does."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from roost.llm.embeddings import HashingEmbedder, MiniLMEmbedder
from roost.memory.chunking import ChunkingPolicy, chunk_text
from roost.memory.extract import Extracted
from roost.memory.knowledge_ingest import PendingSource, embed_sources

DOCS = Path(__file__).resolve().parents[2] / "docs"


def _pending(texts: list[str], count: object, max_tokens: int = 200) -> list[PendingSource]:
    policy = ChunkingPolicy(max_tokens=max_tokens, overlap_tokens=16)
    out = []
    for n, text in enumerate(texts):
        chunks = chunk_text(text, policy=policy, count_tokens=count)  # type: ignore[arg-type]
        out.append(
            PendingSource(f"doc://{n}", Extracted(text, "text", ""), "", 0, {}, True, chunks)
        )
    return out


async def test_sorted_batches_return_each_sources_vectors_in_its_order() -> None:
    embedder = HashingEmbedder(64)
    texts = ["short one.", "word " * 300, "a middling paragraph " * 20, "x"]
    pending = _pending(texts, lambda t: len(t.split()), max_tokens=40)
    seen: list[tuple[int, int]] = []
    await embed_sources(embedder, pending, batch_size=3, progress=lambda d, n: seen.append((d, n)))
    total = sum(len(p.chunks) for p in pending)
    assert seen[-1] == (total, total) and len(seen) == -(-total // 3)
    for source in pending:
        alone = await embedder.embed([c.text for c in source.chunks])
        assert source.vectors is not None and np.array_equal(source.vectors, alone)


@pytest.mark.slow
async def test_minilm_vectors_match_one_text_at_a_time_and_per_file_batches() -> None:
    embedder = MiniLMEmbedder()
    texts = [DOCS.joinpath(name).read_text()[:1000] for name in ("memory.md", "operations.md")]
    pending = _pending(texts, embedder.count_tokens, max_tokens=60)
    chunks = [c for p in pending for c in p.chunks]
    assert len({c.tokens for c in chunks}) > 3  # lengths differ: sorting reorders them
    await embed_sources(embedder, pending, batch_size=8)
    batched = np.concatenate([p.vectors for p in pending if p.vectors is not None])
    alone = np.stack([(await embedder.embed([c.text]))[0] for c in chunks])  # no padding at all
    per_file = np.concatenate([await embedder.embed([c.text for c in p.chunks]) for p in pending])
    assert np.abs(batched - alone).max() < 1e-5
    assert np.abs(batched - per_file).max() < 1e-5


@pytest.mark.slow  # loads the model
def test_chunk_token_counts_equal_the_models_tokenizer() -> None:
    embedder = MiniLMEmbedder()
    model_tokenizer = embedder._load().tokenizer
    text = DOCS.joinpath("memory.md").read_text() + " café naïve 東京 \x00 tabs\tand\u00a0nbsp"
    pieces = [text, *text.split("\n\n")[:40], "", "   "]
    for piece in pieces:
        expected = len(model_tokenizer(piece, add_special_tokens=False, verbose=False)["input_ids"])
        assert embedder.count_tokens(piece) == expected
    assert embedder.count_tokens(text) > 128  # the file's own 128-token truncation is off
