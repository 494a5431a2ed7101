"""The local engine as one HTTP caller sees it: the chat service, metered.

Every call takes its worst case (prompt + max_tokens of every choice) from the caller's
tokens-per-minute limits and holds it against the caller's budgets before the engine
starts; when it ends (finished, failed, or cancelled because the client left) the limits
and budgets are settled to what it used and one usage row is written. A stream the client
abandons is charged its prompt and about one token per delivered delta.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable

from roost.chat import ChatService
from roost.chat.service import PreparedChat
from roost.chat.text_completion import Prompt, TextCompletion, complete_text, tokenized
from roost.chat.types import ChatRequest, ChatResult, ChatStream
from roost.engine.sampling_params import SamplingParams
from roost.llm.base import RequestContext
from roost.llm.budgets import Reservation
from roost.llm.messages import ResponseDone, StreamEvent, TextDelta, Usage, choices_usage
from roost.llm.metering import Meter, TokenLimits
from roost.llm.usage import UsageStatus


class _Call:
    """One metered call in flight."""

    def __init__(self, estimate: int, reservation: Reservation) -> None:
        self.estimate = estimate
        self.reservation = reservation
        self.started = time.perf_counter()


class MeteredChat:
    """A :class:`~roost.chat.ChatTarget` over the local chat service for one caller."""

    def __init__(
        self,
        chat: ChatService,
        meter: Meter,
        context: RequestContext,
        token_limits: TokenLimits | None = None,
    ) -> None:
        self.chat = chat
        self.meter = meter
        self.context = context
        self.token_limits = token_limits
        self.model_id = f"local:{chat.engine.model_name}"

    @property
    def engine(self) -> object:
        return self.chat.engine

    async def complete(self, request: ChatRequest) -> ChatResult:
        prepared = self.chat.prepare(request)
        call = await self._begin(prepared.num_prompt_tokens, prepared.max_output_tokens)
        status: UsageStatus = "cancelled"
        usage = Usage(prepared.num_prompt_tokens)
        try:
            result = await self.chat.complete_prepared(prepared)
            usage, status = result.usage, "ok"
            return result
        except Exception:
            status = "error"
            raise
        finally:
            await self._end(call, usage, status)

    async def open_stream(self, request: ChatRequest) -> ChatStream:
        prepared = self.chat.prepare(request)
        call = await self._begin(prepared.num_prompt_tokens, prepared.max_output_tokens)
        stream = self.chat.stream_prepared(prepared)
        return ChatStream(self._metered(stream.events, prepared, call), stream.model,
                          stream.prompt_tokens)  # fmt: skip

    async def complete_text(
        self, prompts: list[Prompt], sampling: SamplingParams, *, n: int, echo: bool
    ) -> TextCompletion:
        """Plain-prompt completions (``/v1/completions``), metered the same way."""
        engine = self.chat.engine
        num_prompt = sum(len(ids) for ids in tokenized(engine, prompts))
        call = await self._begin(num_prompt, (sampling.max_tokens or 0) * n * len(prompts))
        status: UsageStatus = "cancelled"
        usage = Usage(num_prompt)
        try:
            result = await complete_text(
                engine, prompts, sampling, n=n, echo=echo, tenant_id=self.context.tenant_id
            )
            usage, status = result.usage, "ok"
            return result
        except Exception:
            status = "error"
            raise
        finally:
            await self._end(call, usage, status)

    def count_tokens(self, request: ChatRequest) -> int:
        return self.chat.count_tokens(request)

    def token_decoder(self) -> Callable[[int], str] | None:
        return self.chat.token_decoder()

    async def _metered(
        self, events: AsyncIterator[StreamEvent], prepared: PreparedChat, call: _Call
    ) -> AsyncIterator[StreamEvent]:
        usages: list[Usage] = []
        num_deltas = 0
        status: UsageStatus = "cancelled"
        try:
            async for event in events:
                if isinstance(event, ResponseDone):
                    usages.append(event.response.usage)
                elif isinstance(event, TextDelta):
                    num_deltas += 1
                yield event
            status = "ok"
        except Exception:
            status = "error"
            raise
        finally:
            if len(usages) == prepared.n:
                usage = choices_usage(usages)
            else:  # cut short: the prompt, and about a token per delta delivered
                usage = Usage(prepared.num_prompt_tokens, num_deltas)
            await self._end(call, usage, status)

    async def _begin(self, prompt_tokens: int, max_output_tokens: int) -> _Call:
        estimate = prompt_tokens + max_output_tokens
        context = self.context
        if self.token_limits is not None:
            await self.token_limits.take_tokens(context.tenant_id, context.key_id, estimate)
        try:
            reservation = await self.meter.reserve(
                context,
                cost_nano=self.meter.prices.cost_nano(
                    self.model_id, Usage(prompt_tokens, max_output_tokens)
                ),
                tokens=estimate,
            )
        except BaseException:
            if self.token_limits is not None:
                await self.token_limits.settle_tokens(context.tenant_id, context.key_id, -estimate)
            raise
        return _Call(estimate, reservation)

    async def _end(self, call: _Call, usage: Usage, status: UsageStatus) -> None:
        latency_ms = int((time.perf_counter() - call.started) * 1000)
        context = self.context
        await self.meter.record(call.reservation, context, self.model_id, usage, latency_ms, status)
        if self.token_limits is not None:
            await self.token_limits.settle_tokens(
                context.tenant_id, context.key_id, usage.total_tokens - call.estimate
            )
