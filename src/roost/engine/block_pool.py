"""A fixed pool of KV-cache blocks with reference counts and a prefix cache.

Blocks whose last reference goes away keep their contents while they carry a prefix hash:
they sit in an LRU list and are handed out again (evicted) only when no free block is left.
Every operation is O(1) except :meth:`acquire_prefix`, which is O(number of blocks matched).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Sequence

from roost.errors import Overloaded

BlockHash = bytes
_ROOT_HASH = b""


def hash_block(parent: BlockHash, token_ids: Sequence[int]) -> BlockHash:
    """Chained content hash of one full block: depends on every token before it too."""
    hasher = hashlib.blake2b(parent, digest_size=16)
    hasher.update(b"".join(t.to_bytes(4, "little", signed=False) for t in token_ids))
    return hasher.digest()


def salt_for(tenant_id: str | None) -> BlockHash:
    """The hash-chain salt of a tenant: cached blocks are shared only within one tenant."""
    if not tenant_id:
        return _ROOT_HASH
    return hashlib.blake2b(tenant_id.encode(), digest_size=16, person=b"roost-kv").digest()


def prefix_hashes(
    token_ids: Sequence[int], block_size: int, num_blocks: int, salt: BlockHash = _ROOT_HASH
) -> list[BlockHash]:
    """Hashes of the first ``num_blocks`` full blocks of ``token_ids``.

    ``salt`` starts the chain: sequences with different salts (tenants) never share blocks.
    """
    hashes: list[BlockHash] = []
    parent = salt
    for index in range(num_blocks):
        parent = hash_block(parent, token_ids[index * block_size : (index + 1) * block_size])
        hashes.append(parent)
    return hashes


class BlockPool:
    """Owns block ids ``0 .. num_blocks-1``; callers hold them in per-sequence block tables."""

    def __init__(self, num_blocks: int, block_size: int, *, enable_prefix_cache: bool = True):
        if num_blocks < 1 or block_size < 1:
            raise ValueError("num_blocks and block_size must be positive")
        self.num_blocks = num_blocks
        self.block_size = block_size
        self.enable_prefix_cache = enable_prefix_cache
        self.ref_counts = [0] * num_blocks
        self._free: list[int] = list(range(num_blocks - 1, -1, -1))  # stack, pops block 0 first
        # Unreferenced blocks that still hold a cached prefix, least recently used first.
        self._evictable: OrderedDict[int, None] = OrderedDict()
        self._hash_to_block: dict[BlockHash, int] = {}
        self._block_to_hash: dict[int, BlockHash] = {}
        self.num_prefix_queries = 0
        self.num_prefix_hits = 0

    @property
    def num_free_blocks(self) -> int:
        """Blocks that :meth:`allocate` can hand out (free + evictable cached ones)."""
        return len(self._free) + len(self._evictable)

    @property
    def num_used_blocks(self) -> int:
        return self.num_blocks - self.num_free_blocks

    @property
    def num_cached_blocks(self) -> int:
        return len(self._block_to_hash)

    def can_allocate(self, num_blocks: int) -> bool:
        return self.num_free_blocks >= num_blocks

    def allocate(self) -> int:
        """A block with reference count 1; evicts the least recently used cached block if needed."""
        if self._free:
            block = self._free.pop()
        elif self._evictable:
            block, _ = self._evictable.popitem(last=False)
            self._forget_hash(block)
        else:
            raise Overloaded("KV cache is full: no free block")
        self.ref_counts[block] = 1
        return block

    def share(self, block: int) -> None:
        """Add a reference to a block that is already in use (fork, prefix reuse)."""
        if self.ref_counts[block] <= 0:
            raise ValueError(f"block {block} is not in use")
        self.ref_counts[block] += 1

    def free(self, block: int) -> None:
        """Drop one reference; the block becomes reusable when none are left."""
        count = self.ref_counts[block]
        if count <= 0:
            raise ValueError(f"block {block} freed twice")
        self.ref_counts[block] = count - 1
        if count == 1:
            if block in self._block_to_hash:
                self._evictable[block] = None
            else:
                self._free.append(block)

    def free_all(self, blocks: Sequence[int]) -> None:
        # Free the tail first so the LRU order evicts a sequence's last blocks before its
        # prefix, which other sequences are more likely to share.
        for block in reversed(blocks):
            self.free(block)

    def copy_on_write(self, block: int) -> tuple[int, bool]:
        """A block that the caller may write into: the same one if unshared, else a fresh copy.

        Returns ``(block, needs_copy)``; when ``needs_copy`` the caller copies the KV contents
        of the old block into the new one. A written block no longer matches its hash.
        """
        if self.ref_counts[block] == 1:
            self._forget_hash(block)
            return block, False
        fresh = self.allocate()
        self.free(block)
        return fresh, True

    def acquire_prefix(
        self, token_ids: Sequence[int], max_blocks: int, salt: BlockHash = _ROOT_HASH
    ) -> tuple[list[int], list[BlockHash]]:
        """Blocks holding the longest cached prefix of ``token_ids`` (referenced for you).

        Returns the blocks and their hashes; at most ``max_blocks`` are matched.
        """
        if not self.enable_prefix_cache or max_blocks <= 0:
            return [], []
        self.num_prefix_queries += 1
        blocks: list[int] = []
        hashes: list[BlockHash] = []
        for block_hash in prefix_hashes(token_ids, self.block_size, max_blocks, salt):
            block = self.take_cached(block_hash)
            if block is None:
                break
            blocks.append(block)
            hashes.append(block_hash)
        if blocks:
            self.num_prefix_hits += 1
        return blocks, hashes

    def take_cached(self, block_hash: BlockHash) -> int | None:
        """The cached block holding ``block_hash``, referenced for you; None if not cached."""
        block = self._hash_to_block.get(block_hash)
        if block is None:
            return None
        if self.ref_counts[block] == 0:
            del self._evictable[block]
        self.ref_counts[block] += 1
        return block

    def register(self, block: int, block_hash: BlockHash) -> None:
        """Record that ``block`` now holds the full block identified by ``block_hash``."""
        if not self.enable_prefix_cache or block in self._block_to_hash:
            return
        if block_hash in self._hash_to_block:
            return  # an identical block is cached already; keep that one
        self._hash_to_block[block_hash] = block
        self._block_to_hash[block] = block_hash

    def drop_cached(self) -> int:
        """Forget every cached prefix no sequence holds (a cache clear); blocks in use,
        session caches' pinned ones included, keep theirs. Returns blocks freed."""
        dropped = list(self._evictable)
        self._evictable.clear()
        for block in dropped:
            self._forget_hash(block)
            self._free.append(block)
        return len(dropped)

    def _forget_hash(self, block: int) -> None:
        block_hash = self._block_to_hash.pop(block, None)
        if block_hash is not None:
            del self._hash_to_block[block_hash]

    def check_invariants(self) -> None:
        """Raise AssertionError if the bookkeeping is inconsistent (tests, debugging)."""
        free = set(self._free)
        evictable = set(self._evictable)
        assert len(free) == len(self._free), "duplicate block in free list"
        assert not free & evictable, "block both free and evictable"
        for block, count in enumerate(self.ref_counts):
            assert count >= 0
            if count == 0:
                assert block in free or block in evictable, f"block {block} leaked"
            else:
                assert block not in free
                assert block not in evictable
        assert evictable <= set(self._block_to_hash)
        for block_hash, block in self._hash_to_block.items():
            assert self._block_to_hash[block] == block_hash
