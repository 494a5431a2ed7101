"""Chat prompts encoded message by message give exactly the tokenizer's ids."""

from __future__ import annotations

from roost.engine.loader import Checkpoint
from roost.engine.prompt_encoder import PromptEncoder, splits_cleanly
from roost.engine.tokenizer import Tokenizer

TEXTS = [
    "<|im_start|>system\nYou are kind.<|im_end|>\n<|im_start|>user\nHi  there<|im_end|>\n",
    "<|im_start|>assistant\n  leading spaces, trailing ones   <|im_end|>\n<|im_start|>user\n",
    "no special tokens at all, just 12345 digits and émojis 🌊",
    "<|im_end|><|im_end|>glued<|im_start|><|endoftext|>\n\n\n",
]


def test_cached_pieces_give_the_tokenizers_ids(smollm_checkpoint: Checkpoint) -> None:
    tokenizer = Tokenizer(smollm_checkpoint.tokenizer)
    specials = splits_cleanly(smollm_checkpoint.tokenizer.tokenizer_json)
    assert specials is not None and "<|im_start|>" in specials
    calls: list[str] = []

    def counting_encode(text: str) -> list[int]:
        calls.append(text)
        return tokenizer.encode(text)

    encoder = PromptEncoder(counting_encode, specials)
    for text in TEXTS:
        assert encoder.encode(text) == tokenizer.encode(text)
    first_pass = len(calls)
    for text in TEXTS:  # the same history again: nothing is encoded twice
        assert encoder.encode(text) == tokenizer.encode(text)
    assert len(calls) == first_pass


def test_tokens_that_strip_whitespace_disable_splitting() -> None:
    stripping = '{"added_tokens": [{"content": "<s>", "lstrip": true, "rstrip": false}]}'
    assert splits_cleanly(stripping) is None
