"""Copy K/V between the engine's block pool tensor and per-session tensors [L, T, 2, H, D]."""

from __future__ import annotations

from collections.abc import Sequence

import torch


def block_slots(blocks: Sequence[int], block_size: int) -> torch.Tensor:
    """Flat pool slots of ``blocks`` in order: block * block_size + offset."""
    base = torch.tensor(list(blocks), dtype=torch.long)[:, None] * block_size
    return (base + torch.arange(block_size)).reshape(-1)


def read_blocks(kv_cache: torch.Tensor, blocks: Sequence[int], block_size: int) -> torch.Tensor:
    """A copy of the K/V held by ``blocks``: [L, len(blocks) * block_size, 2, H, D]."""
    return kv_cache.index_select(1, block_slots(blocks, block_size))


def write_blocks(
    kv_cache: torch.Tensor, blocks: Sequence[int], block_size: int, kv: torch.Tensor
) -> None:
    """Store ``kv`` [L, len(blocks) * block_size, 2, H, D] into ``blocks`` of the pool."""
    kv_cache.index_copy_(1, block_slots(blocks, block_size), kv.to(kv_cache.dtype))


def common_prefix_length(a: Sequence[int], b: Sequence[int]) -> int:
    """How many leading tokens two sequences share."""
    limit = min(len(a), len(b))
    if list(a[:limit]) == list(b[:limit]):
        return limit  # the common case (a returning agent): one C-level comparison
    low, high = 0, limit  # invariant: a[:low] == b[:low], a[:high] != b[:high]
    while high - low > 1:
        middle = (low + high) // 2
        if list(a[low:middle]) == list(b[low:middle]):
            low = middle
        else:
            high = middle
    return low
