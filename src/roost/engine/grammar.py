"""Grammar-constrained decoding with llguidance: JSON Schema, regex, Lark, and tool calls.

A :class:`GrammarCompiler` is built once per tokenizer; each constrained request gets a
:class:`GrammarMatcher` that masks disallowed tokens before sampling and consumes the chosen
token after, so the finished output always matches the grammar.
"""

from __future__ import annotations

import json
import threading
from typing import Any

import numpy as np
import torch

from roost.engine.sampling_params import StructuredOutput
from roost.engine.tokenizer import Tokenizer
from roost.errors import InvalidRequest


def tool_call_schema(tools: list[dict[str, Any]]) -> dict[str, Any]:
    """JSON Schema of ``{"name": <one tool>, "arguments": <its parameters>}``."""
    options = []
    for tool in tools:
        function = tool.get("function", tool)
        name = function.get("name")
        if not isinstance(name, str) or not name:
            raise InvalidRequest("every tool needs a function name", param="tools")
        parameters = dict(function.get("parameters") or {"type": "object", "properties": {}})
        # Like strict function calling: arguments hold the declared properties only, which
        # also keeps small models from rambling on with invented keys.
        parameters.setdefault("additionalProperties", False)
        options.append(
            {
                "type": "object",
                "properties": {"name": {"const": name}, "arguments": parameters},
                "required": ["name", "arguments"],
                "additionalProperties": False,
            }
        )
    return options[0] if len(options) == 1 else {"anyOf": options}


class GrammarCompiler:
    """Compiles :class:`StructuredOutput` specs into matchers for one tokenizer."""

    def __init__(self, tokenizer: Tokenizer, vocab_size: int) -> None:
        self.tokenizer = tokenizer
        self.vocab_size = vocab_size
        self._ll_tokenizer: Any = None
        self._lock = threading.Lock()

    def _tokenizer(self) -> Any:
        import llguidance

        with self._lock:  # building the token trie takes ~1 s: do it once, lazily
            if self._ll_tokenizer is None:
                eos = sorted(self.tokenizer.stop_token_ids)
                self._ll_tokenizer = llguidance.LLTokenizer(
                    self.tokenizer.backend.to_str(), n_vocab=self.vocab_size, eos_token=eos
                )
            return self._ll_tokenizer

    def grammar_text(self, spec: StructuredOutput) -> str:
        from llguidance import LLMatcher

        if spec.regex is not None:
            return str(LLMatcher.grammar_from_regex(spec.regex))
        if spec.lark is not None:
            return str(LLMatcher.grammar_from_lark(spec.lark))
        if spec.tool_calls is not None:
            schema: dict[str, Any] = tool_call_schema(spec.tool_calls)
        elif spec.json_schema is not None:
            schema = spec.json_schema
        else:
            schema = {"type": "object"}
        # Compact JSON: no free-form whitespace for the model to loop on.
        return str(
            LLMatcher.grammar_from_json_schema(
                json.dumps(schema), defaults={"whitespace_flexible": False}
            )
        )

    def validate(self, spec: StructuredOutput) -> str:
        """The grammar text, or InvalidRequest naming the problem (call before queueing)."""
        from llguidance import LLMatcher

        grammar = self.grammar_text(spec)
        error = LLMatcher.validate_grammar(grammar, self._tokenizer())
        if error and not error.startswith("WARNING"):
            raise InvalidRequest(
                f"invalid structured output spec: {error}", param="response_format"
            )
        return grammar

    def matcher(self, grammar: str) -> GrammarMatcher:
        return GrammarMatcher(self._tokenizer(), grammar, self.vocab_size)


class GrammarMatcher:
    """Per-request grammar state."""

    def __init__(self, ll_tokenizer: Any, grammar: str, vocab_size: int) -> None:
        from llguidance import LLMatcher

        self._matcher = LLMatcher(ll_tokenizer, grammar, log_level=0)
        if self._matcher.is_error():
            raise InvalidRequest(
                f"invalid structured output spec: {self._matcher.get_error()}",
                param="response_format",
            )
        self.vocab_size = vocab_size
        self._bitmask = torch.zeros((vocab_size + 31) // 32, dtype=torch.int32)

    def mask_logits(self, logits: torch.Tensor) -> None:
        """Set the logits of tokens the grammar forbids next to -inf, in place ([V])."""
        self._matcher.unsafe_compute_mask_ptr(
            self._bitmask.data_ptr(), self._bitmask.numel() * self._bitmask.element_size()
        )
        bits = np.unpackbits(self._bitmask.numpy().view(np.uint8), bitorder="little")
        allowed = torch.from_numpy(bits[: logits.shape[-1]].astype(np.bool_))
        logits.masked_fill_(~allowed, float("-inf"))

    def consume(self, token_id: int) -> None:
        self._matcher.consume_token(token_id)

    @property
    def is_stopped(self) -> bool:
        """True when the grammar is complete and allows nothing more."""
        return bool(self._matcher.is_stopped())

    @property
    def error(self) -> str | None:
        return str(self._matcher.get_error()) if self._matcher.is_error() else None
