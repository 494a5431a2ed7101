"""BlockPool: allocation, reference counts, copy-on-write and the prefix cache."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from roost.engine.block_pool import BlockPool, hash_block, prefix_hashes
from roost.errors import Overloaded


def test_allocate_until_empty_then_overloaded() -> None:
    pool = BlockPool(3, 4)
    blocks = [pool.allocate() for _ in range(3)]
    assert sorted(blocks) == [0, 1, 2]
    assert not pool.can_allocate(1)
    with pytest.raises(Overloaded):
        pool.allocate()
    pool.free(blocks[1])
    assert pool.allocate() == blocks[1]


def test_drop_cached_forgets_unused_prefixes_and_keeps_held_ones() -> None:
    pool = BlockPool(4, 2)
    held, unused = pool.allocate(), pool.allocate()
    pool.register(held, hash_block(b"", [1, 2]))
    pool.register(unused, hash_block(b"", [3, 4]))
    pool.free(unused)  # cached but unreferenced: evictable
    assert pool.num_cached_blocks == 2
    assert pool.drop_cached() == 1
    assert pool.num_cached_blocks == 1 and pool.take_cached(hash_block(b"", [3, 4])) is None
    assert pool.num_free_blocks == 3
    pool.check_invariants()


def test_double_free_is_rejected() -> None:
    pool = BlockPool(2, 4)
    block = pool.allocate()
    pool.free(block)
    with pytest.raises(ValueError, match="freed twice"):
        pool.free(block)


def test_shared_block_is_copied_on_write_and_unshared_one_is_not() -> None:
    pool = BlockPool(4, 4)
    block = pool.allocate()
    pool.share(block)
    copy, needs_copy = pool.copy_on_write(block)
    assert needs_copy
    assert copy != block
    assert pool.ref_counts[block] == 1
    assert pool.ref_counts[copy] == 1
    same, needs_copy = pool.copy_on_write(copy)
    assert (same, needs_copy) == (copy, False)


def test_prefix_is_reused_after_the_owner_frees_it() -> None:
    pool = BlockPool(8, 4)
    tokens = list(range(12))
    owner = [pool.allocate() for _ in range(3)]
    for block, block_hash in zip(owner, prefix_hashes(tokens, 4, 3), strict=True):
        pool.register(block, block_hash)
    pool.free_all(owner)
    assert pool.num_free_blocks == 8  # cached blocks still count as allocatable
    blocks, hashes = pool.acquire_prefix([*tokens[:8], 99, 98, 97, 96], max_blocks=3)
    assert blocks == owner[:2]
    assert len(hashes) == 2
    assert all(pool.ref_counts[b] == 1 for b in blocks)
    pool.check_invariants()


def test_hash_is_chained_over_previous_blocks() -> None:
    first = hash_block(b"", [1, 2])
    assert hash_block(first, [3, 4]) != hash_block(hash_block(b"", [9, 9]), [3, 4])


def test_eviction_takes_least_recently_freed_cached_block_first() -> None:
    pool = BlockPool(2, 2)
    a, b = pool.allocate(), pool.allocate()
    pool.register(a, hash_block(b"", [1, 1]))
    pool.register(b, hash_block(b"", [2, 2]))
    pool.free(a)
    pool.free(b)
    assert pool.allocate() == a  # a was freed first: evicted first
    assert pool.acquire_prefix([1, 1], 1) == ([], [])
    assert pool.acquire_prefix([2, 2], 1)[0] == [b]


def test_referenced_cached_blocks_are_never_evicted() -> None:
    pool = BlockPool(2, 2)
    a = pool.allocate()
    pool.register(a, hash_block(b"", [1, 1]))
    other = pool.allocate()
    pool.free(other)
    assert pool.allocate() == other
    with pytest.raises(Overloaded):
        pool.allocate()
    assert pool.ref_counts[a] == 1


class BlockPoolMachine(RuleBasedStateMachine):
    """Random interleavings of sequence-level operations; bookkeeping must stay exact."""

    def __init__(self) -> None:
        super().__init__()
        self.pool = BlockPool(12, 2)
        self.tables: list[list[int]] = []
        self.expected_refs = [0] * 12

    @precondition(lambda self: self.pool.num_free_blocks > 0)
    @rule(tokens=st.lists(st.integers(0, 3), min_size=1, max_size=8))
    def admit(self, tokens: list[int]) -> None:
        full = len(tokens) // 2
        blocks, _ = self.pool.acquire_prefix(tokens, full)
        needed = -(-len(tokens) // 2) - len(blocks)
        if not self.pool.can_allocate(needed):
            self.pool.free_all(blocks)
            return
        table = blocks + [self.pool.allocate() for _ in range(needed)]
        for index, block_hash in enumerate(prefix_hashes(tokens, 2, full)):
            self.pool.register(table[index], block_hash)
        for block in table:
            self.expected_refs[block] += 1
        self.tables.append(table)

    @precondition(lambda self: bool(self.tables))
    @rule(data=st.data())
    def release(self, data: st.DataObject) -> None:
        table = self.tables.pop(data.draw(st.integers(0, len(self.tables) - 1)))
        self.pool.free_all(table)
        for block in table:
            self.expected_refs[block] -= 1

    @precondition(lambda self: bool(self.tables) and self.pool.num_free_blocks > 0)
    @rule(data=st.data())
    def fork_and_write(self, data: st.DataObject) -> None:
        source = self.tables[data.draw(st.integers(0, len(self.tables) - 1))]
        for block in source:
            self.pool.share(block)
            self.expected_refs[block] += 1
        fork = list(source)
        old = fork[-1]
        new, needs_copy = self.pool.copy_on_write(old)
        assert needs_copy == (self.expected_refs[old] > 1)
        if needs_copy:
            self.expected_refs[old] -= 1
            self.expected_refs[new] += 1
        fork[-1] = new
        self.tables.append(fork)

    @invariant()
    def refcounts_match_the_tables(self) -> None:
        assert self.pool.ref_counts == self.expected_refs
        self.pool.check_invariants()
        in_use = sum(1 for count in self.expected_refs if count)
        assert self.pool.num_used_blocks == in_use

    def teardown(self) -> None:
        for table in self.tables:
            self.pool.free_all(table)
        assert all(count == 0 for count in self.pool.ref_counts)
        self.pool.check_invariants()


TestBlockPoolMachine = BlockPoolMachine.TestCase
TestBlockPoolMachine.settings = settings(max_examples=60, stateful_step_count=40, deadline=None)


@given(st.lists(st.integers(0, 50), min_size=0, max_size=40), st.integers(1, 8))
def test_prefix_hashes_depend_on_every_earlier_token(tokens: list[int], size: int) -> None:
    count = len(tokens) // size
    hashes = prefix_hashes(tokens, size, count)
    if count >= 2:
        changed = [tokens[0] + 1, *tokens[1:]]
        assert all(a != b for a, b in zip(hashes, prefix_hashes(changed, size, count), strict=True))
