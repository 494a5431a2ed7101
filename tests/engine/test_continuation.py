"""Splicing a session's generated ids into a prompt that spells the same text otherwise."""

from __future__ import annotations

from roost.engine.continuation import ContinuationMemory, splice_same_text

# A toy vocabulary where "ffpp" has two spellings: one token, or "ff" + "pp".
VOCAB = {1: "<s>", 2: "ff", 3: "pp", 4: "ffpp", 5: " and", 6: " more", 7: "</s>", 8: " other"}


def surface(token_id: int) -> str:
    return VOCAB[token_id]


def text(ids: list[int]) -> str:
    return "".join(VOCAB[i] for i in ids)


def test_a_respelled_reply_takes_the_generated_ids() -> None:
    generated = [1, 2, 3, 5]  # the model wrote "ff" "pp"
    canonical = [1, 4, 5, 7, 6]  # the client's text re-encoded: "ffpp", then a new turn
    spliced = splice_same_text(generated, canonical, surface)
    assert spliced == [1, 2, 3, 5, 7, 6]
    assert text(spliced) == text(canonical)


def test_a_real_edit_is_not_spliced() -> None:
    generated = [1, 2, 3, 5]
    edited = [1, 2, 8, 6]  # the history was changed after "ff"
    assert splice_same_text(generated, edited, surface) == edited


def test_memory_checks_the_text_and_counts_splices() -> None:
    memory = ContinuationMemory(surface, text)
    assert memory.align("s", [1, 4]) == [1, 4]  # nothing remembered yet
    memory.remember("s", [1, 2, 3])
    assert memory.align("s", [1, 4, 6]) == [1, 2, 3, 6]
    assert memory.num_spliced_prompts == 1
    memory.forget("s")
    assert memory.align("s", [1, 4, 6]) == [1, 4, 6]


def test_memory_is_bounded() -> None:
    memory = ContinuationMemory(surface, text, max_sessions=2)
    for session in ("a", "b", "c"):
        memory.remember(session, [1, 2, 3])
    assert memory.align("a", [1, 4]) == [1, 4]  # the oldest was dropped
    assert memory.align("c", [1, 4]) == [1, 2, 3]
