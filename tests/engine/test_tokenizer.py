"""Tokenizer built from GGUF metadata, chat template rendering, and streaming detokenization."""

from __future__ import annotations

import pytest

from roost.engine.detokenizer import IncrementalDetokenizer
from roost.engine.loader import Checkpoint
from roost.engine.tokenizer import Tokenizer
from roost.errors import InvalidRequest


@pytest.fixture(scope="module")
def tokenizer(smollm_checkpoint: Checkpoint) -> Tokenizer:
    return Tokenizer(smollm_checkpoint.tokenizer)


@pytest.mark.parametrize(
    "text",
    ["Hello world!", "  indented\n\ttabs", "é ü 日本語 🎉", "def f(x):\n    return x**2"],
)
def test_round_trip(tokenizer: Tokenizer, text: str) -> None:
    assert tokenizer.decode(tokenizer.encode(text)) == text


def test_known_ids_and_special_tokens(tokenizer: Tokenizer) -> None:
    # Ids from the reference tokenizer of SmolLM2.
    assert tokenizer.encode("Hello world!") == [19556, 905, 17]
    assert tokenizer.encode("<|im_start|>user") == [1, 4093]
    assert tokenizer.encode("2024") == [34, 32, 34, 36]  # SmolLM splits digits
    assert tokenizer.stop_token_ids == {0, 2}  # <|endoftext|>, <|im_end|> (the declared EOS)


def test_chat_template_renders_the_default_system_prompt(tokenizer: Tokenizer) -> None:
    text = tokenizer.apply_chat_template([{"role": "user", "content": "hi"}])
    assert text.startswith("<|im_start|>system\nYou are a helpful AI assistant named SmolLM")
    assert text.endswith("<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n")
    without = tokenizer.apply_chat_template(
        [{"role": "user", "content": "hi"}], add_generation_prompt=False
    )
    assert not without.endswith("assistant\n")


def test_template_errors_are_invalid_requests(tokenizer: Tokenizer) -> None:
    with pytest.raises(InvalidRequest) as caught:
        tokenizer.apply_chat_template([{"role": "user"}])
    assert caught.value.param == "messages"


def _stream(tokenizer: Tokenizer, text: str, stop: tuple[str, ...]) -> tuple[list[str], str]:
    detok = IncrementalDetokenizer(
        tokenizer, [], stop, skip_special_tokens=True, include_stop_str=False
    )
    deltas = []
    for token in tokenizer.encode(text):
        detok.add(token)
        deltas.append(detok.take_delta(final=False))
        if detok.stopped_by:
            break
    deltas.append(detok.take_delta(final=True))
    return deltas, detok.text


def test_stop_string_spanning_tokens_is_cut_and_never_streamed(tokenizer: Tokenizer) -> None:
    deltas, text = _stream(tokenizer, "The answer is 42. STOP here please", ("P he",))
    assert text == "The answer is 42. STO"
    assert "".join(deltas) == text
    assert all("P he" not in d for d in deltas)


def test_partial_stop_prefix_is_released_when_it_does_not_complete(tokenizer: Tokenizer) -> None:
    deltas, text = _stream(tokenizer, "abc END? no, ENDING", ("ENDX",))
    assert text == "abc END? no, ENDING"
    assert "".join(deltas) == text


def test_multibyte_characters_are_not_split(tokenizer: Tokenizer) -> None:
    deltas, text = _stream(tokenizer, "emoji 🎉 done", ())
    assert text == "emoji 🎉 done"
    assert all("\ufffd" not in d for d in deltas)
