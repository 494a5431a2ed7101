"""The context window: runs on threads far larger than the model's context still fit."""

from __future__ import annotations

import json
from typing import Any

import pytest

from roost.agents.context_window import (
    MESSAGE_OVERHEAD_TOKENS,
    SUMMARIZER_INSTRUCTIONS,
    plan_window,
    units_of,
)
from roost.agents.react import build_react_graph, run_input
from roost.agents.runtime import AgentRuntime, RunContext
from roost.agents.spec import AgentSpec
from roost.chat.service import ChatService
from roost.engine import Engine
from roost.graph import CompiledGraph, MemoryCheckpointer
from roost.llm.messages import Message, ToolCallPart, ToolResultPart
from roost.llm.providers import ProviderRegistry
from roost.llm.providers.local import LocalModel
from roost.llm.router import Router
from roost.llm.service import LLMService
from roost.llm.testing import CallInfo, FunctionModel, TestModel, count_tokens
from tests.agents.conftest import RuntimeFactory

CONTEXT = 600
REPLY = 40


def history(turns: int, words: int = 60) -> list[dict[str, Any]]:
    """A long thread: each turn a question, a tool call with its result, and an answer."""
    filler = " ".join(["word"] * words)
    messages: list[dict[str, Any]] = []
    for n in range(turns):
        call = {"id": f"old_{n}", "name": "add", "arguments": '{"a": 1, "b": 1}'}
        messages += [
            {"id": f"u{n}", "role": "user", "content": f"question {n} {filler}"},
            {"id": f"a{n}", "role": "assistant", "content": "", "tool_calls": [call]},
            {"id": f"t{n}", "role": "tool", "tool_call_id": f"old_{n}", "name": "add",
             "content": f"2 {filler}", "is_error": False},
            {"id": f"r{n}", "role": "assistant", "content": f"answer {n} {filler}"},
        ]  # fmt: skip
    return messages


async def seed(graph: CompiledGraph, tenant_id: str, messages: list[dict[str, Any]]) -> None:
    """Give thread t1 a long history: one short run (a thread needs state), then the rest."""
    run = RunContext(tenant_id, "t1", "run_0", "counter", 1)
    await graph.ainvoke(run_input(run, "hello"), thread_id="t1")
    await graph.aupdate_state("t1", {"messages": messages}, as_node="finalize")


def request_tokens(info: CallInfo) -> int:
    """What the request costs by the scripted model's tokenizer (words), as the window counts."""
    total = 0
    for message in info.messages:
        text = message.text
        for part in message.parts:
            if isinstance(part, ToolCallPart):
                text += f" {part.name} {part.arguments}"
            elif isinstance(part, ToolResultPart):
                text += part.content
        total += count_tokens(text) + MESSAGE_OVERHEAD_TOKENS
    for tool in info.tools:
        total += count_tokens(f"{tool.name} {tool.description} {json.dumps(tool.parameters)}")
    return total


def assert_well_formed(info: CallInfo, newest_user: str) -> None:
    assert info.messages[0].role == "system" and "You count." in info.messages[0].text
    assert info.messages[1].role == "user", [m.role for m in info.messages]
    assert request_tokens(info) <= CONTEXT - REPLY
    assert any(m.role == "user" and m.text == newest_user for m in info.messages)
    called = {p.id for m in info.messages for p in m.parts if isinstance(p, ToolCallPart)}
    answered = {p.tool_call_id for m in info.messages for p in m.parts
                if isinstance(p, ToolResultPart)}  # fmt: skip
    assert answered <= called, "a tool result without its call"


async def test_a_thread_far_larger_than_the_context_still_runs(
    make_runtime: RuntimeFactory, tenant_id: str
) -> None:
    task = "what is 20 plus 22"

    def script(info: CallInfo) -> Message | str:
        if info.messages[-1].text == "hello":
            return "hi"
        assert_well_formed(info, task)
        if isinstance(info.messages[-1].parts[0], ToolResultPart):
            return "42"
        return Message("assistant", (ToolCallPart("c1", "add", '{"a": 20, "b": 22}'),))

    model = FunctionModel(script, "function:small", context_length=CONTEXT)
    spec = AgentSpec(name="counter", model="function:small", instructions="You count.",
                     tools=["add"], max_tokens=REPLY)  # fmt: skip
    graph = build_react_graph(spec, make_runtime(model)).compile(checkpointer=MemoryCheckpointer())
    old = history(100)  # about 20,000 words against a 600-word context
    await seed(graph, tenant_id, old)
    model.calls.clear()

    out = await graph.ainvoke(
        run_input(RunContext(tenant_id, "t1", "run_1", "counter", 1), task), thread_id="t1"
    )
    assert out["status"] == "succeeded" and out["output"] == "42"
    assert len(model.calls) == 2
    # the checkpointed thread keeps every message; only the requests were windowed
    assert len(out["messages"]) == 2 + len(old) + 4
    start = out["context_start"]
    assert start is not None and start != "u0"
    # the cursor stays put while the window still fits: the second request extends the first
    first, second = model.calls
    assert second.messages[: len(first.messages)] == first.messages


async def test_summarize_keeps_what_the_window_left_behind(
    make_runtime: RuntimeFactory, tenant_id: str
) -> None:
    summaries: list[str] = []

    def script(info: CallInfo) -> str:
        if info.messages[-1].text == "hello":
            return "hi"
        if info.messages[0].text == SUMMARIZER_INSTRUCTIONS:
            summaries.append(info.messages[1].text)
            assert request_tokens(info) <= CONTEXT
            return "The user asked many questions about counting."
        assert_well_formed(info, "and now?")
        assert "asked many questions about counting" in info.messages[0].text
        return "done"

    model = FunctionModel(script, "function:small", context_length=CONTEXT)
    spec = AgentSpec(name="counter", model="function:small", instructions="You count.",
                     max_tokens=REPLY, context={"policy": "summarize"})  # fmt: skip
    graph = build_react_graph(spec, make_runtime(model)).compile(checkpointer=MemoryCheckpointer())
    await seed(graph, tenant_id, history(40))
    out = await graph.ainvoke(
        run_input(RunContext(tenant_id, "t1", "run_1", "counter", 1), "and now?"), thread_id="t1"
    )
    assert out["status"] == "succeeded", out
    assert len(summaries) == 1 and out["context_summary"].startswith("The user asked")
    # the summariser read the newest turns the window dropped (older ones did not fit)
    first_kept = int(out["context_start"][1:])
    assert f"question {first_kept - 1} " in summaries[0] and "question 0 " not in summaries[0]
    assert out["usage"]["model_calls"] == 2  # the summary call counts
    assert len(out["messages"]) == 2 + 160 + 2


def test_plan_keeps_tool_calls_with_their_results_and_starts_at_a_user_turn() -> None:
    messages = history(6, words=10)
    messages.append({"id": "now", "role": "user", "content": "newest"})
    for budget in range(40, 400, 7):
        window = plan_window(messages, None, budget, count_tokens)
        units = units_of(window.messages)
        assert window.messages[0]["role"] == "user"
        assert window.messages[-1]["id"] == "now"
        for unit in units:
            if unit[0].get("tool_calls"):
                assert [m["role"] for m in unit] == ["assistant", "tool"]
        assert all(m["role"] != "tool" or len(u) > 1 for u in units for m in u)


def test_the_cursor_moves_only_when_the_window_overflows() -> None:
    messages = history(6, words=10)
    first = plan_window(messages, None, 200, count_tokens)
    assert first.start not in (None, "u0")
    dropped_ids = [m["id"] for m in first.dropped]
    assert dropped_ids[0] == "u0" and first.messages[0]["id"] == first.start
    messages.append({"id": "x", "role": "user", "content": "one more"})
    again = plan_window(messages, first.start, 200, count_tokens)
    assert again.start == first.start and again.dropped == []


def test_a_message_larger_than_the_budget_is_clipped_in_the_request() -> None:
    messages = [{"id": "big", "role": "user", "content": "word " * 5000}]
    window = plan_window(messages, None, 300, count_tokens)
    assert sum(count_tokens(m["content"]) for m in window.messages) <= 150
    assert messages[0]["content"].count("word") == 5000  # the stored message is untouched


async def test_limits_come_from_the_model_or_the_configuration() -> None:
    registry = ProviderRegistry(env={})
    registry.register(TestModel("test:knows", context_length=2048))
    registry.register(TestModel("test:remote"))
    registry.register(TestModel("test:other"))
    llm = LLMService(Router(registry), context_lengths={"test:remote": 32000})
    assert (await llm.limits("test:knows")).context_length == 2048
    assert (await llm.limits("test:knows")).exact
    remote = await llm.limits("test:remote")
    assert remote.context_length == 32000 and not remote.exact
    assert remote.count_tokens("abcdef") == 2  # three characters a token: over-estimates
    llm.router.add_group("both", [("test:knows", 1.0), ("test:remote", 1.0)])
    assert (await llm.limits("both")).context_length == 2048  # the tightest deployment
    assert (await llm.limits("test:other")).context_length == 8192  # the default


@pytest.mark.slow
async def test_the_bundled_model_answers_on_a_thread_larger_than_its_context(
    engine: Engine, tenant_id: str
) -> None:
    service = ChatService(engine)

    async def get_service() -> ChatService:
        return service

    model = LocalModel(f"local:{engine.model_name}", get_service)
    registry = ProviderRegistry(env={})
    registry.register(model)
    runtime = AgentRuntime(LLMService(Router(registry)))
    spec = AgentSpec(name="counter", model=model.model_id, instructions="You count.",
                     max_tokens=4, temperature=0, context={"max_tokens": 200})  # fmt: skip
    graph = build_react_graph(spec, runtime).compile(checkpointer=MemoryCheckpointer())
    old = history(100)
    limits = await model.limits()
    assert limits is not None and limits.exact
    assert sum(limits.count_tokens(str(m["content"])) for m in old) > 2 * engine.context_length

    await seed(graph, tenant_id, old)
    out = await graph.ainvoke(
        run_input(RunContext(tenant_id, "t1", "run_1", "counter", 1), "What is 2 plus 2?"),
        thread_id="t1",
    )
    assert out["status"] == "succeeded", out
    # system prompt + at most 200 tokens of transcript + template markers
    assert out["usage"]["input_tokens"] <= 300, out["usage"]
