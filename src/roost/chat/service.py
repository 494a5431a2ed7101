"""The chat service: one request in, n choices out, streamed or whole."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import AsyncIterator, Callable
from typing import Protocol

from roost.chat.prompt import TemplateEngine, render_prompt
from roost.chat.stream_parser import ReplyStreamParser
from roost.chat.tool_grammar import offered_tools, parse_reply, structured_output
from roost.chat.types import ChatRequest, ChatResult, ChatStream
from roost.engine.outputs import EngineEvent, EngineUsage
from roost.engine.sampling_params import SamplingParams
from roost.engine.sequence import TokenLogprob
from roost.errors import InvalidRequest, RoostError
from roost.llm.messages import (
    FinishReason,
    Message,
    Response,
    ResponseDone,
    StreamEvent,
    TextDelta,
    ToolCallPart,
    Usage,
    choices_usage,
)
from roost.storage.ids import new_id

MAX_CHOICES = 16


class ChatEngine(TemplateEngine, Protocol):
    model_name: str
    context_length: int

    def stream(
        self,
        prompt: str | list[int],
        params: SamplingParams | None = None,
        *,
        request_id: str | None = None,
        tenant_id: str | None = None,
        session_id: str | None = None,
    ) -> AsyncIterator[EngineEvent]: ...


@dataclasses.dataclass(slots=True)
class PreparedChat:
    prompt_token_ids: list[int]
    params: list[SamplingParams]  # one per choice
    tools_offered: bool
    tenant_id: str | None = None
    session_id: str | None = None

    @property
    def num_prompt_tokens(self) -> int:
        return len(self.prompt_token_ids)

    @property
    def n(self) -> int:
        return len(self.params)

    @property
    def max_output_tokens(self) -> int:
        """The most tokens every choice together may generate."""
        return sum(p.max_tokens or 0 for p in self.params)

    def generate(self, engine: ChatEngine, index: int) -> AsyncIterator[EngineEvent]:
        """Stream choice ``index``; only the first choice continues the session's cache."""
        return engine.stream(
            self.prompt_token_ids,
            self.params[index],
            tenant_id=self.tenant_id,
            session_id=self.session_id if index == 0 else None,
        )


class ChatService:
    """Chat completions on the local engine, shared by the OpenAI and Anthropic adapters."""

    def __init__(self, engine: ChatEngine) -> None:
        self.engine = engine

    def prepare(self, request: ChatRequest) -> PreparedChat:
        """Render, tokenize and plan the request; every input error is raised here."""
        if not 1 <= request.n <= MAX_CHOICES:
            raise InvalidRequest(f"n must be between 1 and {MAX_CHOICES}", param="n")
        if not request.messages:
            raise InvalidRequest("messages must not be empty", param="messages")
        tools = offered_tools(request)
        prompt = render_prompt(self.engine, request, offer_tools=bool(tools))
        room = self.engine.context_length - len(prompt)
        if room < 1:
            raise InvalidRequest(
                f"the conversation has {len(prompt)} tokens; this model's context is"
                f" {self.engine.context_length} tokens including the reply",
                param="messages",
            )
        base = request.sampling
        grammar = structured_output(request, tools)
        ceiling: int | None = getattr(self.engine, "max_tokens_ceiling", None)
        if ceiling is not None and base.max_tokens is not None and base.max_tokens > ceiling:
            raise InvalidRequest(
                f"max_tokens is {base.max_tokens}; this server allows at most {ceiling}"
                " (engine.max_tokens)",
                param="max_tokens",
            )
        max_tokens = min(base.max_tokens or room, room, ceiling or room)
        params = []
        for index in range(request.n):
            seed = None if base.seed is None else base.seed + index
            params.append(
                dataclasses.replace(base, max_tokens=max_tokens, seed=seed, structured=grammar)
            )
        return PreparedChat(prompt, params, bool(tools), request.tenant_id, request.session_id)

    async def complete(self, request: ChatRequest) -> ChatResult:
        return await self.complete_prepared(self.prepare(request))

    async def complete_prepared(self, prepared: PreparedChat) -> ChatResult:
        """Every choice of a prepared request, whole (cancelling this cancels them all)."""
        result_id = new_id("chatcmpl")
        choices = await asyncio.gather(
            *(self._run_choice(prepared, index, result_id) for index in range(prepared.n))
        )
        usage = choices_usage([choice.usage for choice in choices])
        return ChatResult(result_id, self.engine.model_name, int(time.time()), choices, usage)

    async def open_stream(self, request: ChatRequest) -> ChatStream:
        """Prepare first, so input errors answer 400 before a stream starts."""
        return self.stream_prepared(self.prepare(request))

    def stream_prepared(self, prepared: PreparedChat) -> ChatStream:
        return ChatStream(
            self._stream(prepared, prepared.n), self.engine.model_name, prepared.num_prompt_tokens
        )

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        """Events of every choice as they come (choices interleave); each choice ends with
        its :class:`ResponseDone`. Leaving the iteration early cancels every generation."""
        async for event in self._stream(self.prepare(request), request.n):
            yield event

    def count_tokens(self, request: ChatRequest) -> int:
        """Prompt tokens of ``request`` as this model would see them."""
        return len(render_prompt(self.engine, request, offer_tools=bool(offered_tools(request))))

    def token_decoder(self) -> Callable[[int], str]:
        tokenizer = self.engine.tokenizer  # type: ignore[attr-defined]
        return lambda token_id: str(tokenizer.decode([token_id], skip_special_tokens=False))

    async def _stream(self, prepared: PreparedChat, n: int) -> AsyncIterator[StreamEvent]:
        queue: asyncio.Queue[StreamEvent | _ChoiceEnded] = asyncio.Queue()
        response_id = new_id("chatcmpl")
        tasks = [
            asyncio.ensure_future(self._pump_choice(prepared, index, response_id, queue))
            for index in range(n)
        ]
        remaining = n
        try:
            while remaining:
                item = await queue.get()
                if isinstance(item, _ChoiceEnded):
                    if item.error is not None:
                        raise RoostError(item.error)
                    remaining -= 1
                    continue
                yield item
            for task in tasks:
                await task  # surface errors raised while pumping
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def _pump_choice(
        self,
        prepared: PreparedChat,
        index: int,
        response_id: str,
        queue: asyncio.Queue[StreamEvent | _ChoiceEnded],
    ) -> None:
        ended = _ChoiceEnded()
        try:
            parser = ReplyStreamParser(index, tools_offered=prepared.tools_offered)
            async for event in prepared.generate(self.engine, index):
                produced: list[StreamEvent] = list(parser.feed(event.text))
                if event.logprobs and parser.mode == "text":
                    # Logprobs travel with the text they belong to (OpenAI streams them so).
                    produced = _with_logprobs(produced, index, tuple(event.logprobs))
                for delta in produced:
                    queue.put_nowait(delta)
                if event.finished:
                    for delta in parser.finish():
                        queue.put_nowait(delta)
                    if event.finish_reason == "error":
                        ended.error = event.error or "generation failed"
                        return
                    reply = _reply(parser.text, parser.calls)
                    response = self._response(prepared, event, reply, response_id)
                    queue.put_nowait(ResponseDone(response, choice=index))
        finally:
            queue.put_nowait(ended)

    async def _run_choice(self, prepared: PreparedChat, index: int, result_id: str) -> Response:
        text_parts: list[str] = []
        logprobs = []
        async for event in prepared.generate(self.engine, index):
            text_parts.append(event.text)
            logprobs.extend(event.logprobs)
            if event.finished:
                if event.finish_reason == "error":
                    raise RuntimeError(event.error or "generation failed")
                parsed = parse_reply("".join(text_parts)) if prepared.tools_offered else None
                text = parsed.text if parsed else "".join(text_parts)
                reply = _reply(text, parsed.tool_calls if parsed else [])
                response = self._response(prepared, event, reply, result_id)
                return dataclasses.replace(response, logprobs=tuple(logprobs))
        raise RuntimeError("the engine ended the stream without finishing the request")

    def _response(
        self, prepared: PreparedChat, event: EngineEvent, reply: Message, response_id: str
    ) -> Response:
        reason, stop = _finish_reason(event, has_calls=bool(reply.tool_calls))
        usage = _usage(prepared.num_prompt_tokens, event.usage)
        return Response(reply, reason, usage, self.engine.model_name, response_id, stop)


@dataclasses.dataclass(slots=True)
class _ChoiceEnded:
    """A choice's pump is done; ``error`` says why generation failed, when it did."""

    error: str | None = None


def _reply(text: str, calls: list[ToolCallPart]) -> Message:
    return Message.turn("assistant", text, calls)


def _usage(prompt_tokens: int, usage: EngineUsage | None) -> Usage:
    if usage is None:
        return Usage(prompt_tokens)
    # The engine's count: a session's prompt may take its earlier generated ids, which can
    # spell the same text in a few more or fewer tokens than the rendered prompt.
    return Usage(usage.prompt_tokens, usage.completion_tokens, usage.cached_prompt_tokens)


def _with_logprobs(
    produced: list[StreamEvent], index: int, logprobs: tuple[TokenLogprob, ...]
) -> list[StreamEvent]:
    """Attach ``logprobs`` to the first text delta, or to an empty one when none came."""
    for position, event in enumerate(produced):
        if isinstance(event, TextDelta):
            produced[position] = dataclasses.replace(event, logprobs=logprobs)
            return produced
    return [*produced, TextDelta("", choice=index, logprobs=logprobs)]


def _finish_reason(event: EngineEvent, *, has_calls: bool) -> tuple[FinishReason, str | None]:
    if event.finish_reason == "length":
        return "length", None
    if event.finish_reason in ("cancelled", "error"):
        return event.finish_reason, None  # type: ignore[return-value]
    if has_calls:
        return "tool_calls", None
    if isinstance(event.stop_reason, str):
        return "stop", event.stop_reason
    return "stop", None
