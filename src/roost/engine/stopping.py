"""Whether a sequence is done after a new token: stop tokens, grammar, stop strings, length."""

from __future__ import annotations

from roost.engine.sequence import Sequence


def advance_and_check_stop(
    seq: Sequence, token: int, stop_token_ids: frozenset[int]
) -> tuple[str | None, str | int | None]:
    """Feed ``token`` (already appended to ``seq``) to the detokenizer and grammar.

    Returns ``(finish_reason, stop_reason)``: ``("stop", token id or stop string)``,
    ``("stop", None)`` when the grammar is complete, ``("length", None)``, or
    ``(None, None)`` to continue. A stop token adds no text.
    """
    if token in stop_token_ids:
        return "stop", token
    detok = seq.detokenizer
    assert detok is not None
    detok.add(token)
    if detok.stopped_by is not None:
        return "stop", detok.stopped_by
    if seq.grammar is not None:
        seq.grammar.consume(token)
        if seq.grammar.is_stopped:
            return "stop", None
    max_tokens = seq.params.max_tokens
    if (max_tokens is not None and seq.num_output_tokens >= max_tokens) or (
        seq.num_tokens >= seq.max_total_tokens
    ):
        return "length", None
    return None, None
