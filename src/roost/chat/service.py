"""The chat service: one request in, n choices out, streamed or whole."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import AsyncIterator
from typing import Protocol

from roost.chat.prompt import TemplateEngine, render_prompt
from roost.chat.stream_parser import ReplyStreamParser
from roost.chat.tool_grammar import offered_tools, parse_reply, structured_output
from roost.chat.types import (
    ChatEvent,
    ChatRequest,
    ChatResult,
    ChatUsage,
    Choice,
    ChoiceFinished,
    FinishReason,
    TextDelta,
    ToolCallArgumentsDelta,
    ToolCallStarted,
    UsageReport,
)
from roost.engine.outputs import EngineEvent, EngineUsage
from roost.engine.sampling_params import SamplingParams
from roost.errors import InvalidRequest
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
        max_tokens = min(base.max_tokens or room, room)
        params = []
        for index in range(request.n):
            seed = None if base.seed is None else base.seed + index
            params.append(
                dataclasses.replace(base, max_tokens=max_tokens, seed=seed, structured=grammar)
            )
        return PreparedChat(prompt, params, bool(tools), request.tenant_id, request.session_id)

    async def complete(self, request: ChatRequest) -> ChatResult:
        prepared = self.prepare(request)
        outcomes = await asyncio.gather(
            *(self._run_choice(prepared, index) for index in range(request.n))
        )
        choices = [choice for choice, _ in outcomes]
        usage = ChatUsage.total(len(prepared.prompt_token_ids), [u for _, u in outcomes])
        return ChatResult(
            new_id("chatcmpl"), self.engine.model_name, int(time.time()), choices, usage
        )

    async def stream(self, request: ChatRequest) -> AsyncIterator[ChatEvent]:
        """Events of every choice as they come (choices interleave), then one UsageReport.

        Leaving the iteration early cancels every choice's generation.
        """
        prepared = self.prepare(request)
        queue: asyncio.Queue[ChatEvent | tuple[int, EngineUsage | None]] = asyncio.Queue()
        tasks = [
            asyncio.ensure_future(self._pump_choice(prepared, index, queue))
            for index in range(request.n)
        ]
        usages: list[EngineUsage] = []
        remaining = request.n
        try:
            while remaining:
                item = await queue.get()
                if isinstance(item, tuple):
                    remaining -= 1
                    if item[1] is not None:
                        usages.append(item[1])
                    continue
                yield item
            for task in tasks:
                await task  # surface errors raised while pumping
            yield UsageReport(ChatUsage.total(len(prepared.prompt_token_ids), usages))
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
        queue: asyncio.Queue[ChatEvent | tuple[int, EngineUsage | None]],
    ) -> None:
        usage: EngineUsage | None = None
        try:
            parser = ReplyStreamParser(index, tools_offered=prepared.tools_offered)
            async for event in prepared.generate(self.engine, index):
                produced = parser.feed(event.text)
                if event.logprobs and parser.mode == "text":
                    # Logprobs travel with the text they belong to (OpenAI streams them so).
                    text_deltas = [e for e in produced if isinstance(e, TextDelta)]
                    if text_deltas:
                        text_deltas[0].logprobs = list(event.logprobs)
                    else:
                        produced.append(TextDelta(index, "", list(event.logprobs)))
                for chat_event in produced:
                    queue.put_nowait(chat_event)
                if event.finished:
                    for chat_event in parser.finish():
                        queue.put_nowait(chat_event)
                    usage = event.usage
                    reason, stop = _finish_reason(event, has_calls=bool(parser.calls))
                    queue.put_nowait(ChoiceFinished(index, reason, stop, event.error))
        finally:
            queue.put_nowait((index, usage))

    async def _run_choice(self, prepared: PreparedChat, index: int) -> tuple[Choice, EngineUsage]:
        text_parts: list[str] = []
        logprobs = []
        async for event in prepared.generate(self.engine, index):
            text_parts.append(event.text)
            logprobs.extend(event.logprobs)
            if event.finished:
                assert event.usage is not None
                parsed = parse_reply("".join(text_parts)) if prepared.tools_offered else None
                text = parsed.text if parsed else "".join(text_parts)
                calls = parsed.tool_calls if parsed else []
                reason, stop = _finish_reason(event, has_calls=bool(calls))
                if reason == "error":
                    raise RuntimeError(event.error or "generation failed")
                return Choice(index, text, calls, reason, stop, logprobs), event.usage
        raise RuntimeError("the engine ended the stream without finishing the request")


def _finish_reason(event: EngineEvent, *, has_calls: bool) -> tuple[FinishReason, str | None]:
    if event.finish_reason == "length":
        return "length", None
    if event.finish_reason in ("cancelled", "error"):
        return event.finish_reason, None  # type: ignore[return-value]
    if has_calls:
        return "tool_calls", None
    if isinstance(event.stop_reason, str):
        return "stop_sequence", event.stop_reason
    return "stop", None


__all__ = ["ChatService", "TextDelta", "ToolCallArgumentsDelta", "ToolCallStarted"]
