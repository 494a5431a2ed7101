"""A chat target behind the content guard: what /v1/chat/completions and /v1/messages
answer through.

Before the model: user and system text is screened as ``input``, tool results as
``tool_output`` (and delimited as untrusted; they stay in the tool role). After it: each
choice's text is screened as ``output``. A stream whose output policy can change the text
(``mask`` or ``block``) is released per choice once that choice is complete, since
personal data can span any two deltas; with ``off`` or ``detect`` it streams as it comes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Callable

from roost.agents.guardrails import GuardrailBlocked
from roost.chat.types import ChatRequest, ChatResult, ChatStream, ChatTarget
from roost.llm.messages import (
    Message,
    Part,
    Response,
    ResponseDone,
    StreamEvent,
    TextDelta,
    TextPart,
    ToolResultPart,
)
from roost.security.content_guard import ContentGuard, Stage


class GuardedChat:
    def __init__(self, target: ChatTarget, guard: ContentGuard, tenant_id: str, actor: str):
        self.target = target
        self.guard = guard
        self.tenant_id = tenant_id
        self.actor = actor

    async def complete(self, request: ChatRequest) -> ChatResult:
        request = await self._screen_request(request)
        result = await self.target.complete(request)
        choices = [await self._screen_response(choice) for choice in result.choices]
        return dataclasses.replace(result, choices=choices)

    async def open_stream(self, request: ChatRequest) -> ChatStream:
        request = await self._screen_request(request)
        stream = await self.target.open_stream(request)
        policy = await self.guard.policy(self.tenant_id)
        if policy.output not in ("mask", "block"):
            if policy.output == "detect":
                stream = dataclasses.replace(stream, events=self._detecting(stream.events))
            return stream
        return dataclasses.replace(stream, events=self._held(stream.events))

    def count_tokens(self, request: ChatRequest) -> int:
        return self.target.count_tokens(request)

    def token_decoder(self) -> Callable[[int], str] | None:
        return self.target.token_decoder()

    async def _screen_request(self, request: ChatRequest) -> ChatRequest:
        messages = [await self._screen_message(m) for m in request.messages]
        return dataclasses.replace(request, messages=messages)

    async def _screen_message(self, message: Message) -> Message:
        parts: list[Part] = []
        changed = False
        for part in message.parts:
            new: Part = part
            if isinstance(part, TextPart) and message.role in ("user", "system"):
                screened = await self.guard.screen(
                    self.tenant_id, "input", part.text, actor=self.actor, target="chat"
                )
                new = TextPart(screened.text)
            elif isinstance(part, ToolResultPart):
                screened = await self.guard.screen(
                    self.tenant_id, "tool_output", part.content, actor=self.actor,
                    target="chat", source=f"tool:{part.name or part.tool_call_id}",
                )  # fmt: skip
                new = dataclasses.replace(part, content=screened.text)
            changed = changed or new is not part
            parts.append(new)
        return Message(message.role, tuple(parts)) if changed else message

    async def _screen_response(self, response: Response) -> Response:
        text = response.text
        if not text:
            return response
        screened = await self.guard.screen(
            self.tenant_id, "output", text, actor=self.actor, target="chat"
        )
        if screened.text == text:
            return response
        others = tuple(p for p in response.message.parts if not isinstance(p, TextPart))
        message = Message(response.message.role, (TextPart(screened.text), *others))
        # The tokens' logprobs would spell out what was masked: they go with it.
        return dataclasses.replace(response, message=message, logprobs=())

    async def _held(self, events: AsyncIterator[StreamEvent]) -> AsyncIterator[StreamEvent]:
        """Text held per choice until its ResponseDone, then released screened."""
        async for event in events:
            if isinstance(event, TextDelta):
                continue  # the whole text comes with ResponseDone
            if isinstance(event, ResponseDone):
                response = await self._screen_response(event.response)
                if response.text:
                    yield TextDelta(response.text, choice=event.choice)
                yield dataclasses.replace(event, response=response)
                continue
            yield event

    async def _detecting(self, events: AsyncIterator[StreamEvent]) -> AsyncIterator[StreamEvent]:
        async for event in events:
            if isinstance(event, ResponseDone) and event.response.text:
                await self._screen_response(event.response)  # counted, never changed
            yield event


class GuardedText:
    """The guard on /v1/completions: prompts as ``input``, each choice's text as
    ``output``. Token-id prompts cannot be read, so a policy that masks or blocks inputs
    refuses them rather than let them through unchecked."""

    def __init__(self, guard: ContentGuard, tenant_id: str, actor: str) -> None:
        self.guard = guard
        self.tenant_id = tenant_id
        self.actor = actor

    async def prompts(self, prompts: list[str | list[int]]) -> list[str | list[int]]:
        policy = await self.guard.policy(self.tenant_id)
        screened: list[str | list[int]] = []
        for prompt in prompts:
            if isinstance(prompt, str):
                screened.append(await self._screen("input", prompt))
            elif policy.input in ("mask", "block"):
                raise GuardrailBlocked(
                    "token-id prompts cannot be checked for personal data, and this tenant's"
                    " guardrail policy masks or blocks inputs: send text"
                )
            else:
                screened.append(prompt)
        return screened

    async def output(self, text: str) -> str:
        return await self._screen("output", text) if text else text

    async def _screen(self, stage: Stage, text: str) -> str:
        screened = await self.guard.screen(
            self.tenant_id, stage, text, actor=self.actor, target="completions"
        )
        return screened.text
