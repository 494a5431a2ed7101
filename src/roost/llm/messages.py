"""The provider-neutral conversation model every provider translates to and from.

Plain frozen dataclasses: cheap to build on the hot path, hashable where it helps the
cache, and free of any one vendor's shape. Providers own the translation both ways.

This is the one message model inside Roost: the local chat service, the gateway, agents
and providers all speak it; only the HTTP adapters translate it to and from wire shapes.
A few fields only the local engine fills (``choice`` for n > 1 choices, ``logprobs``,
``stop_sequence``) default to what every other provider means.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:  # importing the engine package would load torch
    from roost.engine.sequence import TokenLogprob

Role = Literal["system", "user", "assistant", "tool"]
# "stop" covers a stop sequence too (``Response.stop_sequence`` says which); "cancelled"
# is a generation the engine abandoned (shutdown, model swap) before it finished.
FinishReason = Literal["stop", "length", "tool_calls", "content_filter", "cancelled", "error"]


@dataclass(frozen=True, slots=True)
class TextPart:
    """Plain text."""

    text: str
    kind: Literal["text"] = "text"


@dataclass(frozen=True, slots=True)
class ImagePart:
    """An image by URL (``https://`` or ``data:`` URI)."""

    url: str
    media_type: str | None = None
    kind: Literal["image"] = "image"


@dataclass(frozen=True, slots=True)
class ToolCallPart:
    """The model asks for a tool to be called; ``arguments`` is the JSON object as text."""

    id: str
    name: str
    arguments: str
    kind: Literal["tool_call"] = "tool_call"

    def parsed_arguments(self) -> dict[str, Any]:
        """The arguments as a dict (empty when the model sent nothing or not an object)."""
        try:
            value = json.loads(self.arguments or "{}")
        except json.JSONDecodeError:
            return {}
        return value if isinstance(value, dict) else {}


@dataclass(frozen=True, slots=True)
class ToolResultPart:
    """The result of a tool call, sent back in a ``tool`` message."""

    tool_call_id: str
    content: str
    name: str | None = None
    is_error: bool = False
    kind: Literal["tool_result"] = "tool_result"


Part = TextPart | ImagePart | ToolCallPart | ToolResultPart


@dataclass(frozen=True, slots=True)
class Message:
    """One turn of a conversation."""

    role: Role
    parts: tuple[Part, ...]

    @classmethod
    def system(cls, text: str) -> Message:
        return cls("system", (TextPart(text),))

    @classmethod
    def user(cls, text: str) -> Message:
        return cls("user", (TextPart(text),))

    @classmethod
    def assistant(cls, text: str) -> Message:
        return cls("assistant", (TextPart(text),))

    @classmethod
    def tool_result(
        cls, tool_call_id: str, content: str, *, name: str | None = None, is_error: bool = False
    ) -> Message:
        return cls("tool", (ToolResultPart(tool_call_id, content, name, is_error),))

    @classmethod
    def turn(cls, role: Role, text: str, tool_calls: Sequence[ToolCallPart] = ()) -> Message:
        """A turn of text (no text part when empty) followed by its tool calls."""
        parts: tuple[Part, ...] = (TextPart(text),) if text else ()
        return cls(role, (*parts, *tool_calls))

    @property
    def text(self) -> str:
        """All text parts joined."""
        return "".join(p.text for p in self.parts if isinstance(p, TextPart))

    @property
    def tool_calls(self) -> list[ToolCallPart]:
        return [p for p in self.parts if isinstance(p, ToolCallPart)]


@dataclass(frozen=True, slots=True)
class ToolDefinition:
    """A tool the model may call; ``parameters`` is a JSON Schema object."""

    name: str
    description: str = ""
    parameters: dict[str, Any] = field(default_factory=lambda: {"type": "object"})


@dataclass(frozen=True, slots=True)
class ModelSettings:
    """Sampling and limits of one request; ``None`` leaves the provider's default."""

    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    stop: tuple[str, ...] = ()
    seed: int | None = None
    # "auto", "none", "required", or a tool name that must be called
    tool_choice: str | None = None
    timeout_s: float | None = None
    # A JSON Schema a text reply must match: the local engine enforces it by grammar
    # (tool calls stay possible); other providers' replies are validated by the caller.
    output_schema: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts of one call. ``cached_input_tokens`` is part of ``input_tokens``."""

    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.cached_input_tokens + other.cached_input_tokens,
        )


def choices_usage(usages: Sequence[Usage]) -> Usage:
    """The usage of n choices sampled from one prompt: the prompt counts once (as OpenAI
    reports it), outputs add up, and the best cache hit among them is the cached part."""
    if not usages:
        return Usage()
    return Usage(
        input_tokens=usages[0].input_tokens,
        output_tokens=sum(u.output_tokens for u in usages),
        cached_input_tokens=max(u.cached_input_tokens for u in usages),
    )


@dataclass(frozen=True, slots=True)
class Response:
    """A finished model turn: the assistant message, why it stopped, and what it used."""

    message: Message
    finish_reason: FinishReason
    usage: Usage
    model: str  # the full ``provider:model`` id that answered
    id: str | None = None
    stop_sequence: str | None = None  # the stop string that ended it, when one did
    logprobs: tuple[TokenLogprob, ...] = ()  # local engine only, when asked for

    @property
    def text(self) -> str:
        return self.message.text

    @property
    def tool_calls(self) -> list[ToolCallPart]:
        return self.message.tool_calls


@dataclass(frozen=True, slots=True)
class TextDelta:
    """A piece of assistant text (``logprobs`` of its tokens when asked for, local only)."""

    text: str
    choice: int = 0  # which of n choices (the local engine samples n > 1)
    logprobs: tuple[TokenLogprob, ...] = ()
    kind: Literal["text_delta"] = "text_delta"


@dataclass(frozen=True, slots=True)
class ToolCallDelta:
    """A piece of a tool call: ``index`` groups pieces; id and name come with the first."""

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""
    choice: int = 0
    kind: Literal["tool_call_delta"] = "tool_call_delta"


@dataclass(frozen=True, slots=True)
class ResponseDone:
    """The last event of every stream (of every choice, when there are n > 1): the whole
    response, as ``request`` would return it."""

    response: Response
    choice: int = 0
    kind: Literal["done"] = "done"


StreamEvent = TextDelta | ToolCallDelta | ResponseDone
