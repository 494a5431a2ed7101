"""``tool_turns`` ends tool calling after N turns, and ``output_schema`` reaches the model
as the shape of its reply (scripted model: exact settings of every call)."""

from __future__ import annotations

from typing import Any

from roost.llm.messages import Message, ToolCallPart
from roost.llm.testing import CallInfo
from tests.agents.test_api import agent_app, new_thread
from tests.server.conftest import AppFactory

SCHEMA = {"type": "object", "properties": {"sum": {"type": "integer"}}, "required": ["sum"]}


async def test_after_tool_turns_the_model_must_answer(
    make_app: AppFactory, auth: dict[str, str]
) -> None:
    seen: list[CallInfo] = []

    def keeps_calling(info: CallInfo) -> Message | str:
        # Would call add forever (like a small model); answers only when told "none".
        seen.append(info)
        if info.settings.tool_choice == "none":
            return '{"sum": 42}'
        return Message("assistant", (ToolCallPart(f"c{len(seen)}", "add", '{"a": 2, "b": 40}'),))

    spec: dict[str, Any] = {"tool_turns": 1, "first_tool_choice": "add", "output_schema": SCHEMA,
                            "max_iterations": 5}  # fmt: skip
    async with agent_app(make_app, auth, keeps_calling, **spec) as (_, client, log):
        thread = await new_thread(client)
        run = await client.post(
            f"/v1/threads/{thread}/runs", json={"agent": "calc", "input": "2+40?", "mode": "wait"}
        )
        body = run.json()
    assert body["status"] == "succeeded", body
    assert body["output"] == {"sum": 42}
    assert [info.settings.tool_choice for info in seen] == ["add", "none"]
    assert all(info.settings.output_schema == SCHEMA for info in seen)
    assert log.calls == [("add", {"a": 2, "b": 40})]  # one tool turn, not max_iterations
