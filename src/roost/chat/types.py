"""What a chat request on the local engine asks for beyond the shared message model.

Messages, tool definitions, events, responses and usage are :mod:`roost.llm.messages`,
the one message model inside Roost; this module adds only what the local engine alone
offers: n choices, engine sampling parameters, tool choice modes and structured replies.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from roost.engine.sampling_params import SamplingParams
from roost.llm.messages import Message, Response, StreamEvent, ToolDefinition, Usage


@dataclass(slots=True, frozen=True)
class ToolChoice:
    """``auto`` (text or calls), ``none`` (text only), ``required`` (calls only), or one tool."""

    mode: Literal["auto", "none", "required", "named"] = "auto"
    name: str | None = None


@dataclass(slots=True, frozen=True)
class ResponseFormat:
    """Text replies must be a JSON object (``schema`` None) or match ``schema``."""

    schema: dict[str, Any] | None = None


@dataclass(slots=True)
class ChatRequest:
    messages: list[Message]
    sampling: SamplingParams
    tools: list[ToolDefinition] = field(default_factory=list)
    tool_choice: ToolChoice = field(default_factory=ToolChoice)
    parallel_tool_calls: bool = True
    response_format: ResponseFormat | None = None
    n: int = 1
    session_id: str | None = None  # the caller's cache identity (agent, thread, conversation)
    tenant_id: str | None = None


@dataclass(slots=True)
class ChatResult:
    """n answers to one request; ``usage`` counts the shared prompt once."""

    id: str
    model: str
    created: int
    choices: list[Response]
    usage: Usage


@dataclass(slots=True)
class ChatStream:
    """An answer being streamed: per choice, deltas then its :class:`ResponseDone`.

    ``prompt_tokens`` is known up front on the local engine and 0 where it is only known
    at the end (gateway model groups).
    """

    events: AsyncIterator[StreamEvent]
    model: str
    prompt_tokens: int = 0


class ChatTarget(Protocol):
    """What answers a chat request: the local chat service or a gateway model group."""

    async def complete(self, request: ChatRequest) -> ChatResult: ...

    async def open_stream(self, request: ChatRequest) -> ChatStream:
        """Check the request (raising input errors before any byte is sent), then stream."""
        ...

    def count_tokens(self, request: ChatRequest) -> int: ...

    def token_decoder(self) -> Callable[[int], str] | None:
        """Token id to text, for logprobs; None where there are no token ids."""
        ...
