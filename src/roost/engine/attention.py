"""Attention over the paged KV pool: grouped queries, and shared prefixes computed once.

Two things make CPU attention fast here:

- **Folded query groups.** The query heads that share a K/V head become extra query rows
  of that head, so the kernel sees plain multi-head attention with ``G * S`` rows per
  head. ``enable_gqa`` instead expands K/V to every query head; for decode steps the
  folded form is ~4x faster on a CPU.
- **Shared prefixes (cascade attention).** When several sequences of a step read the same
  physical blocks first (agents under one system prompt), those keys are attended once
  for all of them, as one wide matrix product, and each sequence then attends only to its
  own suffix. The two partial softmaxes are merged exactly through their log-sum-exps.
  A swarm of 32 agents under a 1,000-token prompt reads the prompt's K/V once per layer
  instead of 32 times.
- **Causal prefill chunks.** A chunk of one prompt attends to the keys before it (all
  visible, no mask) and to its own keys (plain causal, which the CPU kernel computes
  without the masked half and without reading a bias), merged like a shared prefix. An
  explicit mask would make the kernel read a bias and compute every masked block.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F


@dataclass(frozen=True, slots=True)
class SharedPrefix:
    """Rows of a batch whose context starts with the same ``slots``, visible to every query."""

    rows: torch.Tensor  # [n] int64, batch rows sharing the prefix
    slots: torch.Tensor  # [P] int64, flat pool slots of the prefix, in position order


@dataclass(slots=True)
class AttentionBatch:
    """Where each token of a padded batch writes its K/V and which cached slots it may read.

    ``kv_cache`` is the pool tensor [L, num_slots, 2, H_kv, D]; padded tokens write to a
    scratch slot that no mask ever exposes. For the rows of a :class:`SharedPrefix`,
    ``context_slots`` and ``mask`` cover only the keys after the prefix.
    """

    kv_cache: torch.Tensor
    write_slots: torch.Tensor  # [B * S] int64, flat slot per token
    context_slots: torch.Tensor  # [B, T] int64, slots of every visible token, padded
    mask: torch.Tensor  # [B, 1, S, T] bool, True where a query may attend
    cos: torch.Tensor  # [B, S, 1, D]
    sin: torch.Tensor  # [B, S, 1, D]
    shared: list[SharedPrefix] = field(default_factory=list)
    # One row whose S queries are its last S keys, in order, with no padding.
    causal_chunk: bool = False
    # Attend in float32: prefill on CPUs whose bf16 kernels are slower (prefill_precision).
    float32: bool = False
    _bias: torch.Tensor | None = None  # the mask as folded additive bias, made once per step

    def folded_bias(self, group: int, dtype: torch.dtype) -> torch.Tensor:
        """``mask`` as an additive bias for folded queries: [B, 1, G * S, T] in ``dtype``."""
        if self._bias is None or self._bias.dtype != dtype:
            b, _, s, t = self.mask.shape
            allowed = self.mask.unsqueeze(2).expand(b, 1, group, s, t).reshape(b, 1, group * s, t)
            bias = torch.zeros(allowed.shape, dtype=dtype, device=allowed.device)
            self._bias = bias.masked_fill_(~allowed, float("-inf"))
        return self._bias


def paged_attention(q: torch.Tensor, cache: torch.Tensor, batch: AttentionBatch) -> torch.Tensor:
    """Attention of q [B, S, H, D] over one layer's pool ``cache`` [N, 2, Hkv, D].

    Returns [B, S, H * D].
    """
    b, s, h, d = q.shape
    hkv = cache.shape[2]
    group = h // hkv
    keys, values = _gather(cache, batch.context_slots)
    if batch.causal_chunk:
        if batch.float32:
            return _causal_chunk(q.float(), keys.float(), values.float()).to(q.dtype)
        return _causal_chunk(q, keys, values)
    # Heads kvh * group .. kvh * group + group - 1 read K/V head kvh (as repeat_interleave).
    queries = q.view(b, s, hkv, group, d).permute(0, 2, 3, 1, 4).reshape(b, hkv, group * s, d)
    bias = batch.folded_bias(group, q.dtype)
    if batch.shared:
        out = _with_shared_prefixes(queries, keys, values, bias, cache, batch.shared)
    else:
        out = F.scaled_dot_product_attention(queries, keys, values, attn_mask=bias)
    # [B, Hkv, G*S, D] -> [B, S, H * D]
    return out.reshape(b, hkv, group, s, d).permute(0, 3, 1, 2, 4).reshape(b, s, h * d)


def _causal_chunk(q: torch.Tensor, keys: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """Attention of one row's chunk q [1, S, H, D] over keys [1, Hkv, T, D] whose last S are
    the chunk's own: [1, S, H * D].

    Its own keys: causal, with the query groups of a K/V head as the batch dimension (K/V
    only broadcast). The keys before it: every query sees all of them, so the groups fold
    into the rows of their K/V head (one pass over those keys, not one per group).
    """
    _, s, h, d = q.shape
    hkv, t = keys.shape[1], keys.shape[2]
    group = h // hkv
    flash = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu
    grouped = q.view(s, hkv, group, d).permute(2, 1, 0, 3)  # [G, Hkv, S, D]
    own_keys = keys[:, :, t - s :].expand(group, hkv, s, d)
    own_values = values[:, :, t - s :].expand(group, hkv, s, d)
    out, lse = flash(grouped, own_keys, own_values, 0.0, True)
    if t > s:
        folded = grouped.transpose(0, 1).reshape(1, hkv, group * s, d)  # [1, Hkv, G*S, D]
        past_out, past_lse = flash(folded, keys[:, :, : t - s], values[:, :, : t - s])
        past_out = past_out.view(hkv, group, s, d).transpose(0, 1)  # [G, Hkv, S, D]
        past_lse = past_lse.view(hkv, group, s).transpose(0, 1)
        total = torch.logaddexp(lse, past_lse)
        merged = out.float() * (lse - total).exp().unsqueeze(-1)
        merged += past_out.float() * (past_lse - total).exp().unsqueeze(-1)
        out = merged.to(q.dtype)
    # [G, Hkv, S, D] -> [1, S, Hkv * G * D]: head kvh * G + g, as q was laid out
    return out.permute(2, 1, 0, 3).reshape(1, s, h * d)


def _gather(cache: torch.Tensor, slots: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """K and V [B, Hkv, T, D] (strided views of one copy) of ``slots`` [B, T]."""
    b, t = slots.shape
    hkv, d = cache.shape[2], cache.shape[3]
    # index_select of flat slots is ~2x faster than advanced indexing with a [B, T] index.
    context = cache.index_select(0, slots.reshape(-1)).view(b, t, 2 * hkv, d).transpose(1, 2)
    return context[:, :hkv], context[:, hkv:]


def _with_shared_prefixes(
    queries: torch.Tensor,
    keys: torch.Tensor,
    values: torch.Tensor,
    bias: torch.Tensor,
    cache: torch.Tensor,
    shared: list[SharedPrefix],
) -> torch.Tensor:
    """Suffix attention for every row, merged with each shared prefix's attention."""
    flash = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu
    out, lse = flash(queries, keys, values, attn_mask=bias)  # [B, Hkv, R, D], [B, Hkv, R]
    _, hkv, rows_per_head, d = queries.shape
    for prefix in shared:
        n = prefix.rows.shape[0]
        prefix_keys, prefix_values = _gather(cache, prefix.slots[None])  # [1, Hkv, P, D]
        # Every query row of every sharing sequence becomes a row of one wide product.
        stacked = queries.index_select(0, prefix.rows).transpose(0, 1)  # [Hkv, n, R, D]
        stacked = stacked.reshape(1, hkv, n * rows_per_head, d)
        prefix_out, prefix_lse = flash(stacked, prefix_keys, prefix_values)
        prefix_out = prefix_out.view(hkv, n, rows_per_head, d).transpose(0, 1)
        prefix_lse = prefix_lse.view(hkv, n, rows_per_head).transpose(0, 1)
        own_out, own_lse = out.index_select(0, prefix.rows), lse.index_select(0, prefix.rows)
        total = torch.logaddexp(own_lse, prefix_lse)
        merged = own_out.float() * (own_lse - total).exp().unsqueeze(-1)
        merged += prefix_out.float() * (prefix_lse - total).exp().unsqueeze(-1)
        out = out.index_copy(0, prefix.rows, merged.to(out.dtype))
    return out
