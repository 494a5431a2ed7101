"""Gateway bridge: the engine's parsed chat requests become neutral messages/settings."""

from __future__ import annotations

from roost.chat import types as chat
from roost.engine.sampling_params import SamplingParams
from roost.llm.chat_bridge import messages_from_chat, settings_from_chat, tools_from_chat
from roost.llm.messages import ToolCallPart, ToolResultPart
from roost.llm.providers.local import to_chat_request


def test_chat_request_round_trips_through_neutral_messages() -> None:
    request = chat.ChatRequest(
        [
            chat.Message("system", "be brief"),
            chat.Message("user", "weather in Oslo?"),
            chat.Message("assistant", "", [chat.ToolCall("c1", "weather", '{"city":"Oslo"}')]),
            chat.Message("tool", "rain", tool_call_id="c1", name="weather"),
        ],
        SamplingParams(max_tokens=64, temperature=0.3, stop="END", seed=7),
        tools=[chat.ToolSpec("weather", "Weather now", {"type": "object"})],
        tool_choice=chat.ToolChoice("named", "weather"),
    )
    messages = messages_from_chat(request.messages)
    assert [m.role for m in messages] == ["system", "user", "assistant", "tool"]
    assert messages[2].parts == (ToolCallPart("c1", "weather", '{"city":"Oslo"}'),)
    assert messages[3].parts == (ToolResultPart("c1", "rain", "weather"),)
    settings = settings_from_chat(request)
    assert (settings.max_tokens, settings.temperature, settings.stop) == (64, 0.3, ("END",))
    assert settings.tool_choice == "weather"
    tools = tools_from_chat(request.tools)
    again = to_chat_request(messages, settings, tools, None)
    assert [(m.role, m.content, m.tool_call_id) for m in again.messages] == [
        (m.role, m.content, m.tool_call_id) for m in request.messages
    ]
    assert again.tool_choice == request.tool_choice
    assert again.sampling.seed == 7
