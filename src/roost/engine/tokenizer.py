"""Tokenizer: encode/decode, special and stop tokens, and the model's chat template.

Built from GGUF metadata (vocab + merges) or a Hugging Face ``tokenizer.json``, with the
``tokenizers`` library only, so ``transformers`` is not a runtime dependency.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tokenizers import AddedToken, Regex, decoders, models, pre_tokenizers
from tokenizers import Tokenizer as HFTokenizer

from roost.engine.chat_template import ChatTemplate
from roost.errors import InvalidRequest

# Pre-tokenizer split patterns that llama.cpp names in `tokenizer.ggml.pre`.
_LLAMA3_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)
_QWEN2_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)
# Tokens that end a turn in common chat formats, besides the declared EOS.
_END_OF_TURN_TOKENS = ("<|im_end|>", "<|eot_id|>", "<|end_of_text|>", "<|endoftext|>", "</s>")
_GGUF_CONTROL = 3
_GGUF_USER_DEFINED = 4


@dataclass(slots=True)
class TokenizerSpec:
    """Everything needed to rebuild a :class:`Tokenizer` (cached next to converted weights)."""

    tokenizer_json: str
    bos_token_id: int | None
    eos_token_id: int | None
    chat_template: str | None
    extra_stop_token_ids: list[int] = field(default_factory=list)

    def save(self, directory: Path) -> None:
        (directory / "tokenizer.json").write_text(self.tokenizer_json)
        meta = {
            "bos_token_id": self.bos_token_id,
            "eos_token_id": self.eos_token_id,
            "chat_template": self.chat_template,
            "extra_stop_token_ids": self.extra_stop_token_ids,
        }
        (directory / "tokenizer_meta.json").write_text(json.dumps(meta, indent=2))

    @classmethod
    def load(cls, directory: Path) -> TokenizerSpec:
        meta = json.loads((directory / "tokenizer_meta.json").read_text())
        return cls(tokenizer_json=(directory / "tokenizer.json").read_text(), **meta)


class Tokenizer:
    """Text ⇄ token ids for one model, plus its chat template and end-of-turn tokens."""

    def __init__(self, spec: TokenizerSpec) -> None:
        self.spec = spec
        self.backend = HFTokenizer.from_str(spec.tokenizer_json)
        self.backend.no_padding()
        self.backend.no_truncation()
        self.bos_token_id = spec.bos_token_id
        self.eos_token_id = spec.eos_token_id
        self.vocab_size = self.backend.get_vocab_size(with_added_tokens=True)
        self.chat_template = ChatTemplate(spec.chat_template) if spec.chat_template else None
        stops = set(spec.extra_stop_token_ids)
        if spec.eos_token_id is not None:
            stops.add(spec.eos_token_id)
        self.stop_token_ids: frozenset[int] = frozenset(stops)

    def encode(self, text: str, *, add_special_tokens: bool = False) -> list[int]:
        """Token ids of ``text``; special-token strings in the text map to their ids."""
        return list(self.backend.encode(text, add_special_tokens=add_special_tokens).ids)

    def decode(self, token_ids: list[int], *, skip_special_tokens: bool = True) -> str:
        return str(self.backend.decode(token_ids, skip_special_tokens=skip_special_tokens))

    def token_text(self, token_id: int) -> str:
        """The vocabulary entry of one token (for logprob listings)."""
        return self.decode([token_id], skip_special_tokens=False)

    def piece(self, token_id: int) -> str:
        """The token's exact spelling in the vocabulary (byte-level pieces are lossless,
        unlike :meth:`token_text`, which turns half a UTF-8 character into U+FFFD)."""
        return str(self.backend.id_to_token(token_id) or "")

    def token_to_id(self, token: str) -> int | None:
        found = self.backend.token_to_id(token)
        return None if found is None else int(found)

    def apply_chat_template(
        self,
        messages: list[dict[str, Any]],
        *,
        tools: list[dict[str, Any]] | None = None,
        add_generation_prompt: bool = True,
        **kwargs: Any,
    ) -> str:
        """Render ``messages`` (and optional tool schemas) with the model's chat template."""
        if self.chat_template is None:
            raise InvalidRequest("this model has no chat template", param="messages")
        bos = self.token_text(self.bos_token_id) if self.bos_token_id is not None else ""
        eos = self.token_text(self.eos_token_id) if self.eos_token_id is not None else ""
        return self.chat_template.render(
            messages,
            tools=tools,
            add_generation_prompt=add_generation_prompt,
            bos_token=bos,
            eos_token=eos,
            **kwargs,
        )

    @classmethod
    def from_hf_dir(cls, directory: Path) -> Tokenizer:
        return cls(spec_from_hf_dir(directory))


def spec_from_hf_dir(directory: Path) -> TokenizerSpec:
    """Read ``tokenizer.json`` + ``tokenizer_config.json`` of a Hugging Face model directory."""
    path = directory / "tokenizer.json"
    if not path.is_file():
        raise InvalidRequest(f"{directory} has no tokenizer.json", param="model")
    text = path.read_text()
    backend = HFTokenizer.from_str(text)
    config_path = directory / "tokenizer_config.json"
    config: dict[str, Any] = json.loads(config_path.read_text()) if config_path.is_file() else {}

    def token_id(key: str) -> int | None:
        value = config.get(key)
        if isinstance(value, dict):
            value = value.get("content")
        found = backend.token_to_id(value) if isinstance(value, str) else None
        return None if found is None else int(found)

    template = config.get("chat_template")
    if isinstance(template, list):  # named templates: take the default one
        template = next((t["template"] for t in template if t.get("name") == "default"), None)
    return TokenizerSpec(
        tokenizer_json=text,
        bos_token_id=token_id("bos_token"),
        eos_token_id=token_id("eos_token"),
        chat_template=template if isinstance(template, str) else None,
        extra_stop_token_ids=_end_of_turn_ids(backend),
    )


def spec_from_gguf(fields: dict[str, Any]) -> TokenizerSpec:
    """Build a byte-level BPE tokenizer from GGUF ``tokenizer.ggml.*`` metadata."""
    kind = fields.get("tokenizer.ggml.model")
    if kind != "gpt2":
        raise InvalidRequest(
            f"GGUF tokenizer model {kind!r} is not supported (supported: 'gpt2' byte-level BPE); "
            "use the Hugging Face safetensors directory of this model instead",
            param="model",
        )
    tokens: list[str] = list(fields["tokenizer.ggml.tokens"])
    types: list[int] = list(fields.get("tokenizer.ggml.token_type") or [1] * len(tokens))
    merges = [tuple(m.split(" ", 1)) for m in fields["tokenizer.ggml.merges"]]
    vocab = {token: index for index, token in enumerate(tokens)}
    backend = HFTokenizer(models.BPE(vocab=vocab, merges=merges, fuse_unk=False))
    backend.pre_tokenizer = _gguf_pre_tokenizer(str(fields.get("tokenizer.ggml.pre", "default")))
    backend.decoder = decoders.ByteLevel()
    backend.add_special_tokens(
        [
            AddedToken(token, special=True, normalized=False)
            for token, kind_ in zip(tokens, types, strict=True)
            if kind_ in (_GGUF_CONTROL, _GGUF_USER_DEFINED)
        ]
    )

    def optional_id(key: str) -> int | None:
        value = fields.get(key)
        return None if value is None else int(value)

    return TokenizerSpec(
        tokenizer_json=backend.to_str(),
        bos_token_id=optional_id("tokenizer.ggml.bos_token_id"),
        eos_token_id=optional_id("tokenizer.ggml.eos_token_id"),
        chat_template=fields.get("tokenizer.chat_template"),
        extra_stop_token_ids=_end_of_turn_ids(backend),
    )


def _gguf_pre_tokenizer(pre: str) -> pre_tokenizers.PreTokenizer:
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    if pre in ("llama-bpe", "llama3", "smaug-bpe"):
        pattern = _LLAMA3_PATTERN
    elif pre == "qwen2":
        pattern = _QWEN2_PATTERN
    elif pre == "smollm":
        # SmolLM splits every digit on its own before the GPT-2 pattern.
        return pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True), byte_level])
    else:
        return byte_level
    return pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(pattern), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )


def _end_of_turn_ids(backend: HFTokenizer) -> list[int]:
    found = (backend.token_to_id(token) for token in _END_OF_TURN_TOKENS)
    return sorted({int(i) for i in found if i is not None})
