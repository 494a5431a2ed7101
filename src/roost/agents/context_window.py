"""The part of a thread a ReAct run sends to its model, kept within the model's context.

The checkpointed thread keeps every message; only the request is windowed. The policy:

- budget = context length − reply tokens (the spec's ``max_tokens``, else a quarter of
  the context up to 1024) − margin (template overhead) − system prompt − tool definitions,
  and at most ``context.max_tokens`` when the spec sets it;
- the window is every message from a cursor (``context_start``, a message id kept in the
  thread's state) to the end. While it fits, the cursor stays put, so the request only grows
  at its end and the local engine's KV cache for the thread keeps matching. When it no
  longer fits, the cursor moves forward until the window holds at most three quarters of
  the budget: one cache miss buys several turns of growth;
- an assistant turn with tool calls and its tool results are one unit: never split;
- the window starts at a user message, and the newest user message is always in it;
- a single message larger than half the budget is clipped (in the request only);
- ``summarize``: what the cursor passes over is summarised by the agent's own model into a
  running summary (at most a quarter of the budget) appended to the system prompt;
  ``drop_oldest`` just leaves it out.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, runtime_checkable

from roost.agents.runtime import AgentRuntime, RunContext
from roost.agents.spec import ContextPolicy
from roost.llm.limits import DEFAULT_CONTEXT_LENGTH, ModelLimits, TokenCounter
from roost.llm.messages import Message, ModelSettings, Response, ResponseDone, ToolDefinition

Stored = dict[str, Any]
MESSAGE_OVERHEAD_TOKENS = 8  # role markers and separators of a chat template, per message
LOW_WATER = 0.75  # after moving the cursor the window holds at most this share of the budget
CLIP_SHARE = 0.5  # no single message may take more than this share of the budget
SUMMARY_SHARE = 0.25  # the running summary's share of the budget
DEFAULT_REPLY_TOKENS = 1024


@dataclass(frozen=True, slots=True)
class Window:
    """The messages to send, and where the thread's cursor now stands."""

    messages: list[Stored]
    start: str | None  # id of the first message of the window (None: the thread's start)
    dropped: list[Stored] = field(default_factory=list)  # newly passed by the cursor
    budget: int = 0


def transcript_budget(
    limits: ModelLimits,
    policy: ContextPolicy,
    reply_tokens: int | None,
    fixed_tokens: int,
) -> int:
    """Tokens the messages may take, after the reply, the margin and the fixed prompt parts."""
    context = limits.context_length
    reply = reply_tokens or min(DEFAULT_REPLY_TOKENS, context // 4)
    margin = policy.margin_tokens if policy.margin_tokens is not None else max(16, context // 32)
    budget = context - reply - margin - fixed_tokens
    if policy.max_tokens is not None:
        budget = min(budget, policy.max_tokens)
    return max(budget, 1)


def fixed_tokens(system: str, tools: Sequence[ToolDefinition], count: TokenCounter) -> int:
    """What every request carries besides the messages: the system prompt and tool schemas."""
    total = count(system) + MESSAGE_OVERHEAD_TOKENS
    for tool in tools:
        total += count(f"{tool.name} {tool.description} {json.dumps(tool.parameters)}")
    return total


def message_tokens(message: Stored, count: TokenCounter) -> int:
    text = str(message.get("content") or "")
    for call in message.get("tool_calls") or ():
        text += f" {call.get('name', '')} {call.get('arguments', '')}"
    return count(text) + MESSAGE_OVERHEAD_TOKENS


def units_of(messages: Sequence[Stored]) -> list[list[Stored]]:
    """Messages grouped so that a tool-calling assistant turn keeps its tool results."""
    units: list[list[Stored]] = []
    for message in messages:
        if message.get("role") == "tool" and units and _calls_tools(units[-1][0]):
            units[-1].append(message)
        else:
            units.append([message])
    return units


def _calls_tools(message: Stored) -> bool:
    return message.get("role") == "assistant" and bool(message.get("tool_calls"))


def plan_window(
    messages: Sequence[Stored], start: str | None, budget: int, count: TokenCounter
) -> Window:
    """The window for ``messages`` given the cursor ``start`` (see the module docstring)."""
    units = units_of(messages)
    if not units:
        return Window([], start, budget=budget)
    costs = [sum(message_tokens(m, count) for m in unit) for unit in units]
    first = _unit_index(units, start)
    newest_user = max(
        (i for i, unit in enumerate(units) if unit[0].get("role") == "user"), default=None
    )
    if _cost(first, newest_user, costs) > budget:
        first = _advance(first, newest_user, costs, int(budget * LOW_WATER))
    first = _to_user_start(units, first, newest_user)
    kept = units[first:]
    if newest_user is not None and newest_user < first:
        kept = [units[newest_user], *kept]  # the task stays even when older turns go
    dropped = [m for unit in units[_unit_index(units, start) : first] for m in unit]
    if newest_user is not None and newest_user < first:
        dropped = [m for m in dropped if m not in units[newest_user]]
    flat = [_clipped(m, int(budget * CLIP_SHARE), count) for unit in kept for m in unit]
    start_id = _id(units[first][0]) if first < len(units) else start
    return Window(flat, start_id, dropped, budget)


def _unit_index(units: Sequence[Sequence[Stored]], start: str | None) -> int:
    if start is None:
        return 0
    for index, unit in enumerate(units):
        if any(_id(m) == start for m in unit):
            return index
    return 0  # the cursor's message is gone (history edited): start over


def _cost(first: int, newest_user: int | None, costs: Sequence[int]) -> int:
    total = sum(costs[first:])
    if newest_user is not None and newest_user < first:
        total += costs[newest_user]
    return total


def _advance(first: int, newest_user: int | None, costs: Sequence[int], target: int) -> int:
    """The cursor moved forward until the window costs at most ``target`` (or one unit is left)."""
    last = len(costs) - 1
    while first < last and _cost(first, newest_user, costs) > target:
        first += 1
    return first


def _to_user_start(units: Sequence[Sequence[Stored]], first: int, newest_user: int | None) -> int:
    """Move the cursor on to a user message: providers expect one after the system prompt."""
    if newest_user is None or first > newest_user:
        return first
    while units[first][0].get("role") != "user":
        first += 1
    return first


def _clipped(message: Stored, limit: int, count: TokenCounter) -> Stored:
    content = str(message.get("content") or "")
    if message_tokens(message, count) <= limit or not content:
        return message
    marker = "\n[… clipped to fit the context …]"
    keep = len(content)
    for _ in range(8):  # shrink by the measured ratio until it fits
        keep = int(keep * limit / max(1, message_tokens({**message, "content": content[:keep]},
                                                         count)) * 0.9)  # fmt: skip
        if message_tokens({**message, "content": content[:keep] + marker}, count) <= limit:
            break
    return {**message, "content": content[: max(0, keep)] + marker}


def _id(message: Stored) -> str | None:
    value = message.get("id")
    return str(value) if value is not None else None


def summary_prompt(
    previous: str, dropped: Sequence[Stored], limit: int, count: TokenCounter
) -> str:
    """What the summariser reads: the running summary and the newest dropped turns that fit."""
    lines: list[str] = []
    used = count(previous)
    for message in reversed(dropped):
        line = f"{message.get('role')}: {message.get('content') or ''}"
        for call in message.get("tool_calls") or ():
            line += f" [called {call.get('name')}({call.get('arguments')})]"
        cost = count(line) + 1
        if used + cost > limit:
            break
        lines.append(line)
        used += cost
    body = "\n".join(reversed(lines))
    return (
        f"Summary so far:\n{previous or '(none)'}\n\nLater turns:\n{body}\n\n"
        "Rewrite the summary to cover both, in a few short factual sentences: names, facts,"
        " decisions, tool results that matter. No preamble."
    )


SUMMARIZER_INSTRUCTIONS = "You keep a running summary of a conversation for an assistant."


@runtime_checkable
class KnowsModelLimits(Protocol):
    """An LLM service that can tell a model's limits (:meth:`LLMService.limits`)."""

    async def limits(self, model: str) -> ModelLimits: ...


@dataclass(frozen=True, slots=True)
class FittedRequest:
    """A request's system prompt and messages, the state update that moves the thread's
    cursor (and summary), and the responses of any summary calls (for usage)."""

    system: str
    messages: list[Stored]
    update: dict[str, Any]
    summary_calls: list[Response]


class ContextKeeper:
    """Fits each model request of one agent version to the model's context."""

    def __init__(self, policy: ContextPolicy, reply_tokens: int | None, runtime: AgentRuntime):
        self.policy = policy
        self.reply_tokens = reply_tokens
        self.runtime = runtime

    async def limits(self, model: str) -> ModelLimits:
        llm = self.runtime.llm
        if isinstance(llm, KnowsModelLimits):
            return await self.runtime.call(llm.limits(model))
        return ModelLimits(DEFAULT_CONTEXT_LENGTH)

    async def fit(
        self,
        run: RunContext,
        model: str,
        state: Mapping[str, Any],
        system: str,
        messages: Sequence[Stored],
        tools: Sequence[ToolDefinition],
    ) -> FittedRequest:
        limits = await self.limits(model)
        count = limits.count_tokens
        summary = str(state.get("context_summary") or "")
        budget = transcript_budget(
            limits, self.policy, self.reply_tokens, fixed_tokens(system, tools, count)
        )
        summary_room = int(budget * SUMMARY_SHARE) if self.policy.policy == "summarize" else 0
        window = plan_window(messages, state.get("context_start"), budget - summary_room, count)
        update: dict[str, Any] = {}
        if window.start != state.get("context_start"):
            update["context_start"] = window.start
        calls: list[Response] = []
        if summary_room and window.dropped:
            response = await self._summarize(run, model, summary, window.dropped,
                                             summary_room, budget, count)  # fmt: skip
            calls.append(response)
            summary = response.text.strip()
            update["context_summary"] = summary
        if summary:
            system = f"{system}\n\nSummary of the earlier conversation:\n{summary}"
        return FittedRequest(system, window.messages, update, calls)

    async def _summarize(
        self,
        run: RunContext,
        model: str,
        previous: str,
        dropped: Sequence[Stored],
        max_tokens: int,
        budget: int,
        count: TokenCounter,
    ) -> Response:
        prompt = summary_prompt(previous, dropped, budget - max_tokens, count)
        conversation = [Message.system(SUMMARIZER_INSTRUCTIONS), Message.user(prompt)]
        settings = ModelSettings(max_tokens=max_tokens, temperature=0.0)
        # Not the thread's cache identity: the summary request shares no prefix with it.
        context = replace(run.request_context(), cache_identity=None)

        async def collect() -> Response:
            async for event in self.runtime.llm.request_stream(
                model, conversation, settings, (), context=context
            ):
                if isinstance(event, ResponseDone):
                    return event.response
            raise RuntimeError("a model stream ends with ResponseDone")

        return await self.runtime.call(collect())
