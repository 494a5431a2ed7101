"""Moving K/V between the block pool and session tensors; common prefixes of token lists."""

from __future__ import annotations

import torch
from hypothesis import given
from hypothesis import strategies as st

from roost.kvcache.pool_io import common_prefix_length, read_blocks, write_blocks


@given(st.lists(st.integers(0, 3), max_size=60), st.lists(st.integers(0, 3), max_size=60))
def test_common_prefix_length_matches_a_linear_scan(a: list[int], b: list[int]) -> None:
    expected = 0
    while expected < min(len(a), len(b)) and a[expected] == b[expected]:
        expected += 1
    assert common_prefix_length(a, b) == expected


def test_blocks_round_trip_through_the_pool_in_order() -> None:
    block_size = 4
    pool = torch.zeros(2, 8 * block_size + 1, 2, 3, 5)  # [L, slots + scratch, 2, H, D]
    kv = torch.randn(2, 3 * block_size, 2, 3, 5)
    write_blocks(pool, [5, 1, 6], block_size, kv)
    assert torch.equal(read_blocks(pool, [5, 1, 6], block_size), kv)
    assert torch.equal(pool[:, 4:8], kv[:, 4:8])  # block 1 holds the second block of tokens
    assert pool[:, 0:4].abs().sum() == 0  # untouched blocks stay as they were
