"""Turns a :class:`StepPlan` into padded batch tensors and runs the model over the paged KV pool."""

from __future__ import annotations

import torch

from roost.engine.attention import AttentionBatch, SharedPrefix
from roost.engine.model import LlamaModel
from roost.engine.scheduler import PrefillChunk
from roost.engine.sequence import Sequence

# Fewer shared blocks than this are cheaper to attend per sequence than to split off.
MIN_SHARED_BLOCKS = 4


def kv_bytes_per_block(model: LlamaModel, block_size: int, dtype: torch.dtype) -> int:
    cfg = model.config
    element = torch.empty((), dtype=dtype).element_size()
    return cfg.num_layers * 2 * block_size * cfg.num_kv_heads * cfg.head_dim * element


class ModelRunner:
    """Owns the model and the KV pool tensor; every call runs on the engine's worker thread."""

    def __init__(
        self, model: LlamaModel, *, num_blocks: int, block_size: int, dtype: torch.dtype
    ) -> None:
        cfg = model.config
        self.model = model
        self.block_size = block_size
        self.dtype = dtype
        self.device = model.embed_tokens.weight.device
        self.sliding_window = cfg.sliding_window
        # Shared-prefix attention needs the CPU kernel's log-sum-exp; a sliding window could
        # hide part of a prefix from some queries.
        self.shares_prefixes = self.device.type == "cpu" and cfg.sliding_window is None
        # Not in float32: that engine is the reference path (token for token with
        # transformers) and keeps the one masked kernel call; the split is a speed path.
        self.splits_chunks = self.shares_prefixes and dtype != torch.float32
        num_slots = num_blocks * block_size
        self.null_slot = num_slots  # scratch slot for padded tokens; never visible to a query
        # One preallocated tensor for every layer's K and V, indexed by slot = block*size+offset.
        # Left uninitialised: a slot is written before any query can see it, so only the
        # null slot is read unwritten (zeroed below). The pool is sized from free memory,
        # and untouched pages of a large CPU tensor are never committed: memory is taken as
        # the cache fills, not all at start-up.
        self.kv_cache = torch.empty(
            cfg.num_layers,
            num_slots + 1,
            2,
            cfg.num_kv_heads,
            cfg.head_dim,
            dtype=dtype,
            device=self.device,
        )  # [L, N, 2, Hkv, D]
        self.kv_cache[:, self.null_slot].zero_()

    def kv_bytes_per_token(self) -> int:
        """K/V bytes of one cached token (read once per decode step that sees it)."""
        return self.kv_cache[:, 0].nbytes

    @torch.inference_mode()
    def prefill(self, chunks: list[PrefillChunk]) -> torch.Tensor:
        """Compute K/V for every chunk; logits [n, V] for the chunks that end their prompt."""
        token_lists = [
            [chunk.seq.token_at(p) for p in range(chunk.start, chunk.end)] for chunk in chunks
        ]
        starts = [chunk.start for chunk in chunks]
        tables = [chunk.seq.block_table for chunk in chunks]
        hidden = self._forward(token_lists, starts, tables)  # [B, S, H]
        rows = [i for i, chunk in enumerate(chunks) if chunk.is_last]
        if not rows:
            return torch.empty(0, self.model.config.vocab_size)
        index = torch.tensor(rows, device=self.device)
        last = torch.tensor([chunks[i].end - chunks[i].start - 1 for i in rows], device=self.device)
        return self.model.logits(hidden[index, last])

    @torch.inference_mode()
    def decode(self, seqs: list[Sequence]) -> torch.Tensor:
        """One token per sequence; logits [B, V]."""
        token_lists = [[seq.token_at(seq.num_computed_tokens)] for seq in seqs]
        starts = [seq.num_computed_tokens for seq in seqs]
        hidden = self._forward(token_lists, starts, [seq.block_table for seq in seqs])
        return self.model.logits(hidden[:, 0])

    def copy_blocks(self, pairs: list[tuple[int, int]]) -> None:
        """Copy-on-write: duplicate the K/V of block ``src`` into block ``dst``."""
        size = self.block_size
        for src, dst in pairs:
            self.kv_cache[:, dst * size : (dst + 1) * size] = self.kv_cache[
                :, src * size : (src + 1) * size
            ]

    def _forward(
        self, token_lists: list[list[int]], starts: list[int], tables: list[list[int]]
    ) -> torch.Tensor:
        device, size = self.device, self.block_size
        num_seqs = len(token_lists)
        sizes = [len(t) for t in token_lists]
        max_len = max(sizes)
        lengths = torch.tensor(sizes, device=device)  # [B]
        ends = torch.tensor(starts, device=device) + lengths  # [B]
        # Pad in Python and convert once: one tensor per field, not one per sequence.
        tokens = torch.tensor(
            [ids + [0] * (max_len - len(ids)) for ids in token_lists], device=device
        )  # [B, S]
        max_blocks = max(len(t) for t in tables)
        table = torch.tensor(
            [blocks + [0] * (max_blocks - len(blocks)) for blocks in tables], device=device
        )  # [B, max_blocks]
        offsets = torch.arange(size, device=device)
        all_slots = (table[:, :, None] * size + offsets).view(num_seqs, -1)  # [B, blocks*size]
        steps = torch.arange(max_len, device=device)
        is_real = steps[None, :] < lengths[:, None]  # [B, S]
        positions = torch.tensor(starts, device=device)[:, None] + steps  # [B, S]
        # Padded queries get position 0 (rope); they write to the scratch slot.
        positions = torch.where(is_real, positions, 0)
        write_slots = torch.where(is_real, all_slots.gather(1, positions), self.null_slot)
        # Rows that share a prefix attend to it separately: their own keys start after it.
        shared, skipped = self._shared_prefixes(starts, tables)
        first_key = torch.tensor(skipped, device=device)  # [B] position of the first own key
        num_keys = int((ends - first_key).max())
        key_positions = first_key[:, None] + torch.arange(num_keys, device=device)  # [B, T]
        is_key = key_positions < ends[:, None]
        gathered = all_slots.gather(1, key_positions.clamp(max=all_slots.shape[1] - 1))
        context_slots = torch.where(is_key, gathered, self.null_slot)  # [B, T]
        # A padded query looks at its row's first own key, so that no softmax row is empty.
        query_positions = torch.where(is_real, positions, first_key[:, None])  # [B, S]
        mask = key_positions[:, None, :] <= query_positions[:, :, None]  # [B, S, T]
        if self.sliding_window is not None:
            mask &= key_positions[:, None, :] > query_positions[:, :, None] - self.sliding_window
        cos, sin = self.model.rope_for(positions, torch.float32)
        # One prompt's chunk needs no mask: causal over its own keys, all keys before it.
        causal_chunk = self.splits_chunks and num_seqs == 1 and max_len > 1 and not shared
        batch = AttentionBatch(
            kv_cache=self.kv_cache,
            write_slots=write_slots.reshape(-1),
            context_slots=context_slots,
            mask=mask[:, None],
            cos=cos,
            sin=sin,
            causal_chunk=causal_chunk,
            float32=causal_chunk and self.model.prefill_float32,
            shared=[
                SharedPrefix(
                    torch.tensor(rows, device=device),
                    all_slots[rows[0], : num_blocks * size],
                )
                for rows, num_blocks in shared
            ],
        )
        return self.model(tokens, batch)

    def _shared_prefixes(
        self, starts: list[int], tables: list[list[int]]
    ) -> tuple[list[tuple[list[int], int]], list[int]]:
        """Groups of rows that read the same leading blocks, as (rows, number of blocks),
        and per row the position where its own keys start (0 outside every group).

        A shared block must precede every query of the group (all of it is visible), so a
        group shares at most ``min(start) // block_size`` blocks.
        """
        skipped = [0] * len(tables)
        if not self.shares_prefixes or len(tables) < 2:
            return [], skipped
        by_first: dict[int, list[int]] = {}
        for row, (start, blocks) in enumerate(zip(starts, tables, strict=True)):
            if start >= MIN_SHARED_BLOCKS * self.block_size:
                by_first.setdefault(blocks[0], []).append(row)
        groups = []
        for rows in by_first.values():
            if len(rows) < 2:
                continue
            limit = min(starts[r] for r in rows) // self.block_size
            first = tables[rows[0]]
            num_blocks = 0
            while num_blocks < limit and all(
                tables[r][num_blocks] == first[num_blocks] for r in rows
            ):
                num_blocks += 1
            if num_blocks >= MIN_SHARED_BLOCKS:
                groups.append((rows, num_blocks))
                for r in rows:
                    skipped[r] = num_blocks * self.block_size
        return groups, skipped
