"""Turns a :class:`StepPlan` into padded batch tensors and runs the model over the paged KV pool."""

from __future__ import annotations

import torch

from roost.engine.model import AttentionBatch, LlamaModel
from roost.engine.scheduler import PrefillChunk
from roost.engine.sequence import Sequence


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
        num_slots = num_blocks * block_size
        self.null_slot = num_slots  # scratch slot for padded tokens; never visible to a query
        # One preallocated tensor for every layer's K and V, indexed by slot = block*size+offset.
        self.kv_cache = torch.zeros(
            cfg.num_layers,
            num_slots + 1,
            2,
            cfg.num_kv_heads,
            cfg.head_dim,
            dtype=dtype,
            device=self.device,
        )  # [L, N, 2, Hkv, D]

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
        max_end = max(start + n for start, n in zip(starts, sizes, strict=True))
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
        # Padded queries get position 0: they then see one real key, so no softmax row is empty.
        positions = torch.where(is_real, positions, 0)
        write_slots = torch.where(is_real, all_slots.gather(1, positions), self.null_slot)
        key_positions = torch.arange(max_end, device=device)  # [T]
        context_slots = torch.where(
            key_positions[None, :] < ends[:, None], all_slots[:, :max_end], self.null_slot
        )  # [B, T]
        mask = key_positions[None, None, :] <= positions[:, :, None]  # [B, S, T]
        if self.sliding_window is not None:
            mask &= key_positions[None, None, :] > positions[:, :, None] - self.sliding_window
        cos, sin = self.model.rope_for(positions, torch.float32)
        batch = AttentionBatch(
            kv_cache=self.kv_cache,
            write_slots=write_slots.reshape(-1),
            context_slots=context_slots,
            mask=mask[:, None],
            cos=cos,
            sin=sin,
        )
        return self.model(tokens, batch)
