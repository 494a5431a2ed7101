"""Paged attention against a naive per-sequence softmax: folded query groups, shared prefixes."""

from __future__ import annotations

import torch

from roost.engine.attention import AttentionBatch, SharedPrefix, paged_attention

H, HKV, D = 6, 2, 8  # three query heads per K/V head
NUM_SLOTS = 400
PREFIX = 48  # keys every sequence reads first
SUFFIXES = [5, 9, 3, 12]  # each sequence's own keys after the prefix; its last S are queries
S = 3


def naive(q: torch.Tensor, keys: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """q [S, H, D] at the last S of T positions; keys/values [T, Hkv, D]; causal."""
    t = keys.shape[0]
    k = keys.repeat_interleave(H // HKV, dim=1).transpose(0, 1)  # [H, T, D]
    v = values.repeat_interleave(H // HKV, dim=1).transpose(0, 1)
    scores = q.transpose(0, 1) @ k.transpose(1, 2) / D**0.5  # [H, S, T]
    query_pos = torch.arange(t - S, t)[:, None]
    scores = scores.masked_fill(torch.arange(t)[None, :] > query_pos, float("-inf"))
    return (scores.softmax(-1) @ v).transpose(0, 1).reshape(S, H * D)


def make_batch(
    cache: torch.Tensor, prefix: list[int], suffixes: list[list[int]], *, share: bool
) -> AttentionBatch:
    contexts = suffixes if share else [prefix + own for own in suffixes]
    width = max(map(len, contexts))
    null = NUM_SLOTS  # padding slot
    slots = torch.tensor([c + [null] * (width - len(c)) for c in contexts])
    offset = len(prefix) if share else 0
    mask = torch.zeros(len(contexts), 1, S, width, dtype=torch.bool)
    for row, context in enumerate(contexts):
        end = offset + len(context) if share else len(context)
        for i in range(S):
            position = end - S + i
            mask[row, 0, i, : position - offset + 1] = True
    rows = torch.arange(len(suffixes))
    return AttentionBatch(
        kv_cache=cache[None],
        write_slots=torch.empty(0, dtype=torch.long),
        context_slots=slots,
        mask=mask,
        cos=torch.empty(0),
        sin=torch.empty(0),
        shared=[SharedPrefix(rows, torch.tensor(prefix))] if share else [],
    )


def test_folded_groups_and_shared_prefixes_equal_a_naive_softmax() -> None:
    generator = torch.Generator().manual_seed(0)
    cache = torch.randn(NUM_SLOTS + 1, 2, HKV, D, generator=generator)
    order = torch.randperm(NUM_SLOTS, generator=generator).tolist()  # scattered slots
    prefix, rest = order[:PREFIX], order[PREFIX:]
    suffixes = []
    for n in SUFFIXES:
        suffixes.append(rest[:n])
        rest = rest[n:]
    q = torch.randn(len(SUFFIXES), S, H, D, generator=generator)
    expected = torch.stack(
        [
            naive(q[i], cache[prefix + own, 0], cache[prefix + own, 1])
            for i, own in enumerate(suffixes)
        ]
    )
    for share in (False, True):
        batch = make_batch(cache, prefix, suffixes, share=share)
        out = paged_attention(q, cache, batch)
        torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)


def test_a_causal_prefill_chunk_equals_a_naive_softmax() -> None:
    """One prompt's chunk: causal over its own keys and all keys before it, with no mask."""
    generator = torch.Generator().manual_seed(1)
    cache = torch.randn(NUM_SLOTS + 1, 2, HKV, D, generator=generator)
    for past, chunk in ((0, 7), (40, 7), (40, 1 + 16)):
        slots = torch.randperm(NUM_SLOTS, generator=generator)[: past + chunk]
        q = torch.randn(1, chunk, H, D, generator=generator)
        batch = AttentionBatch(
            kv_cache=cache[None],
            write_slots=torch.empty(0, dtype=torch.long),
            context_slots=slots[None],
            mask=torch.empty(0, dtype=torch.bool),  # unused on this path
            cos=torch.empty(0),
            sin=torch.empty(0),
            causal_chunk=True,
        )
        keys, values = cache[slots, 0], cache[slots, 1]  # [T, Hkv, D]
        k = keys.repeat_interleave(H // HKV, dim=1).transpose(0, 1)  # [H, T, D]
        v = values.repeat_interleave(H // HKV, dim=1).transpose(0, 1)
        scores = q[0].transpose(0, 1) @ k.transpose(1, 2) / D**0.5  # [H, S, T]
        query_pos = torch.arange(past, past + chunk)[:, None]
        scores = scores.masked_fill(torch.arange(past + chunk)[None, :] > query_pos, -torch.inf)
        expected = (scores.softmax(-1) @ v).transpose(0, 1).reshape(1, chunk, H * D)
        out = paged_attention(q, cache, batch)
        torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)
