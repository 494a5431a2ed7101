"""Pick the next token of each sequence from its logits: penalties, grammar mask, then
greedy or temperature / top-k / top-p / min-p sampling with a per-request generator."""

from __future__ import annotations

import torch

from roost.engine.sequence import Sequence, TokenLogprob


def sample(logits: torch.Tensor, seqs: list[Sequence]) -> list[tuple[int, TokenLogprob | None]]:
    """One token per row of ``logits`` [N, V] (float32), with logprobs when requested."""
    want_logprobs = any(seq.params.logprobs for seq in seqs)
    # Logprobs describe the model's own distribution, before penalties and sampling knobs.
    logprobs = torch.log_softmax(logits, dim=-1) if want_logprobs else None
    needs_processing = any(seq.params.has_penalties or seq.grammar is not None for seq in seqs)
    if needs_processing:
        logits = logits.clone()
        for row, seq in enumerate(seqs):
            if seq.params.has_penalties:
                apply_penalties(logits[row], seq)
            if seq.grammar is not None:
                seq.grammar.mask_logits(logits[row])
    if all(seq.params.is_greedy for seq in seqs):
        chosen = logits.argmax(dim=-1).tolist()
    else:
        chosen = [
            int(logits[row].argmax()) if seq.params.is_greedy else _sample_row(logits[row], seq)
            for row, seq in enumerate(seqs)
        ]
    results: list[tuple[int, TokenLogprob | None]] = []
    for row, (seq, token) in enumerate(zip(seqs, chosen, strict=True)):
        info = None
        if logprobs is not None and seq.params.logprobs:
            info = _logprob_info(logprobs[row], token, seq.params.top_logprobs)
        results.append((int(token), info))
    return results


def apply_penalties(logits: torch.Tensor, seq: Sequence) -> None:
    """Repetition (HF style, over prompt and output) and OpenAI presence/frequency (output)."""
    params = seq.params
    if params.repetition_penalty != 1.0:
        seen = torch.tensor(sorted(set(seq.token_ids())), dtype=torch.long)
        values = logits[seen]
        logits[seen] = torch.where(
            values > 0, values / params.repetition_penalty, values * params.repetition_penalty
        )
    if (params.presence_penalty or params.frequency_penalty) and seq.output_token_ids:
        counts = torch.bincount(
            torch.tensor(seq.output_token_ids, dtype=torch.long), minlength=logits.shape[-1]
        )[: logits.shape[-1]].to(logits.dtype)
        logits -= params.frequency_penalty * counts + params.presence_penalty * (counts > 0)


def _sample_row(logits: torch.Tensor, seq: Sequence) -> int:
    params = seq.params
    scores = logits / params.temperature  # [V]
    if params.top_k > 0 and params.top_k < scores.shape[-1]:
        kth = torch.topk(scores, params.top_k).values[-1]
        scores = scores.masked_fill(scores < kth, float("-inf"))
    probs = torch.softmax(scores, dim=-1)
    if params.min_p > 0.0:
        probs = probs.masked_fill(probs < params.min_p * probs.max(), 0.0)
    if params.top_p < 1.0:
        sorted_probs, order = probs.sort(descending=True)
        cumulative = sorted_probs.cumsum(0)
        # Keep the smallest set whose mass reaches top_p (always at least the top token).
        drop = cumulative - sorted_probs >= params.top_p * cumulative[-1]
        sorted_probs = sorted_probs.masked_fill(drop, 0.0)
        probs = torch.zeros_like(probs).scatter_(0, order, sorted_probs)
    return int(torch.multinomial(probs, 1, generator=seq.generator))


def _logprob_info(row: torch.Tensor, token: int, num_top: int) -> TokenLogprob:
    top: list[tuple[int, float]] = []
    if num_top:
        values, indices = torch.topk(row, num_top)
        top = list(zip(indices.tolist(), values.tolist(), strict=True))
    return TokenLogprob(token_id=token, logprob=float(row[token]), top=top)
