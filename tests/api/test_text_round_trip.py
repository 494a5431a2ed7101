"""A conversation sent back as text each turn reuses its cache, through the official SDK.

Turn N+1 should prefill only its new user text, the template's few tokens around it, and
the last partly filled KV block of turn N, even when the model spelled its reply with
token ids that the text does not encode back to.
"""

from __future__ import annotations

import openai
from openai.types import CompletionUsage
from openai.types.chat import ChatCompletionMessageParam

from roost.engine import Engine

BLOCK = 16
TEMPLATE_OVERHEAD = 12  # end of the reply's turn, the user's turn markers, the assistant's
SYSTEM = "You are a patient guide to the coast. Answer in a few plain sentences. " * 8


def new_tokens_bound(engine: Engine, user_text: str) -> int:
    """Prompt tokens a returning turn may prefill: its own, not the history's."""
    return len(engine.tokenizer.encode(user_text)) + TEMPLATE_OVERHEAD + BLOCK


def ask(
    oai: openai.OpenAI,
    model: str,
    messages: list[ChatCompletionMessageParam],
    session: str,
    *,
    stream: bool,
) -> tuple[str, CompletionUsage | None]:
    """One greedy turn, streamed or whole: the reply's text and its usage."""
    common = {"model": model, "messages": messages, "max_tokens": 24, "temperature": 0}
    headers = {"X-Roost-Session": session}
    if not stream:
        reply = oai.chat.completions.create(**common, extra_headers=headers)  # type: ignore[call-overload]
        return reply.choices[0].message.content or "", reply.usage
    chunks = list(
        oai.chat.completions.create(
            **common, stream=True, stream_options={"include_usage": True}, extra_headers=headers
        )  # type: ignore[call-overload]
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    return text, chunks[-1].usage


def test_each_turn_prefills_only_its_new_text(
    oai: openai.OpenAI, engine: Engine, model_name: str
) -> None:
    messages: list[ChatCompletionMessageParam] = [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": "What does a lighthouse keeper do at dusk?"},
    ]
    follow_ups = ["And in a storm?", "Which tools does the keeper carry?", "Thank you."]
    for turn, follow_up in enumerate([None, *follow_ups]):
        if follow_up is not None:
            messages.append({"role": "user", "content": follow_up})
        # Streamed turns alternate with whole ones: both paths must keep the cache.
        text, usage = ask(oai, model_name, messages, "round-trip-greedy", stream=turn % 2 == 1)
        assert usage is not None and usage.prompt_tokens_details is not None
        cached = usage.prompt_tokens_details.cached_tokens or 0
        if follow_up is not None:
            prefilled = usage.prompt_tokens - cached
            assert prefilled <= new_tokens_bound(engine, follow_up), (turn, usage)
        messages.append({"role": "assistant", "content": text})


def generated_boundaries(logprobs: list[bytes]) -> list[int]:
    offsets, end = [], 0
    for piece in logprobs:
        end += len(piece)
        offsets.append(end)
    return offsets


def canonical_boundaries(engine: Engine, text: str) -> list[int]:
    encoding = engine.tokenizer.backend.encode(text, add_special_tokens=False)
    return [len(text[:end].encode()) for _, end in encoding.offsets]


def test_a_reply_the_text_does_not_spell_back_is_still_reused(
    oai: openai.OpenAI, engine: Engine, model_name: str
) -> None:
    # Sampling hot enough that the model sometimes splits a word its own way; find a
    # reply that re-encodes to other ids (the case that used to lose the whole history).
    question: list[ChatCompletionMessageParam] = [
        {"role": "user", "content": "Write a short note about lighthouses."}
    ]
    for seed in range(24):
        session = f"round-trip-respelled-{seed}"
        first = oai.chat.completions.create(
            model=model_name,
            messages=question,
            max_tokens=24,
            temperature=1.3,
            seed=seed,
            logprobs=True,
            extra_headers={"X-Roost-Session": session},
        )
        choice = first.choices[0]
        assert choice.logprobs is not None and choice.logprobs.content is not None
        pieces = [bytes(t.bytes or []) for t in choice.logprobs.content]
        text = choice.message.content or ""
        if generated_boundaries(pieces) != canonical_boundaries(engine, text):
            break
    else:
        raise AssertionError("no reply among 24 seeds was spelled differently from its text")
    assert first.usage is not None
    spliced_before = engine.continuations.num_spliced_prompts
    follow_up = "Tell me more."
    second = oai.chat.completions.create(
        model=model_name,
        messages=[
            *question,
            {"role": "assistant", "content": text},
            {"role": "user", "content": follow_up},
        ],
        max_tokens=4,
        temperature=0,
        extra_headers={"X-Roost-Session": session},
    )
    assert second.usage is not None and second.usage.prompt_tokens_details is not None
    computed = first.usage.prompt_tokens + first.usage.completion_tokens - 1
    cached = second.usage.prompt_tokens_details.cached_tokens or 0
    assert cached >= computed // BLOCK * BLOCK
    assert engine.continuations.num_spliced_prompts == spliced_before + 1
