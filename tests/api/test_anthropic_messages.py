"""/v1/messages through the official anthropic SDK against a real server."""

from __future__ import annotations

import anthropic
import pytest

# The current SDK sends no sampling parameters; the API still takes them, as older clients do.
GREEDY = {"temperature": 0}
QUESTION = [{"role": "user", "content": "What is the capital of France?"}]
WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Current weather for a city",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}


def test_message_answers_with_usage(claude: anthropic.Anthropic, model_name: str) -> None:
    reply = claude.messages.create(
        model=model_name,
        max_tokens=24,
        extra_body=GREEDY,
        system="You answer in one short sentence.",
        messages=QUESTION,
    )
    assert reply.type == "message"
    assert reply.role == "assistant"
    assert reply.content[0].type == "text"
    assert "Paris" in reply.content[0].text
    assert reply.stop_reason == "end_turn"
    assert reply.usage.output_tokens > 0
    assert reply.usage.input_tokens > 0


def test_stream_events_in_order(claude: anthropic.Anthropic, model_name: str) -> None:
    whole = claude.messages.create(
        model=model_name, max_tokens=24, extra_body=GREEDY, messages=QUESTION
    )
    with claude.messages.stream(
        model=model_name, max_tokens=24, extra_body=GREEDY, messages=QUESTION
    ) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_message()
    assert kinds[0] == "message_start"
    assert kinds[-1] == "message_stop"
    assert kinds.index("content_block_start") < kinds.index("content_block_delta")
    assert kinds.index("content_block_stop") < kinds.index("message_delta")
    assert final.content[0].text == whole.content[0].text
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens == whole.usage.output_tokens


def test_max_tokens_and_stop_sequences(claude: anthropic.Anthropic, model_name: str) -> None:
    short = claude.messages.create(
        model=model_name, max_tokens=3, extra_body=GREEDY, messages=QUESTION
    )
    assert short.stop_reason == "max_tokens"
    assert short.usage.output_tokens == 3
    full = claude.messages.create(
        model=model_name, max_tokens=24, extra_body=GREEDY, messages=QUESTION
    )
    text = full.content[0].text
    cut = claude.messages.create(
        model=model_name,
        max_tokens=24,
        extra_body=GREEDY,
        messages=QUESTION,
        stop_sequences=["Paris"],
    )
    assert cut.stop_reason == "stop_sequence"
    assert cut.stop_sequence == "Paris"
    assert cut.content[0].text == text[: text.index("Paris")]


def test_tool_use_round_trip_with_cache_reads(claude: anthropic.Anthropic, model_name: str) -> None:
    messages: list[dict[str, object]] = [{"role": "user", "content": "Weather in Lisbon?"}]
    first = claude.messages.create(
        model=model_name,
        max_tokens=64,
        extra_body=GREEDY,
        tools=[WEATHER_TOOL],
        tool_choice={"type": "any"},
        messages=messages,
    )
    assert first.stop_reason == "tool_use"
    use = next(b for b in first.content if b.type == "tool_use")
    assert use.name == "get_weather"
    assert set(use.input) == {"city"}
    messages.append({"role": "assistant", "content": [b.model_dump() for b in first.content]})
    messages.append(
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "Rainy, 14 C"}],
        }
    )
    second = claude.messages.create(
        model=model_name,
        max_tokens=32,
        extra_body=GREEDY,
        tools=[WEATHER_TOOL],
        messages=messages,
    )
    first_prompt = first.usage.input_tokens + (first.usage.cache_read_input_tokens or 0)
    assert (second.usage.cache_read_input_tokens or 0) >= first_prompt - 16


def test_streamed_tool_use_json_deltas(claude: anthropic.Anthropic, model_name: str) -> None:
    with claude.messages.stream(
        model=model_name,
        max_tokens=64,
        extra_body=GREEDY,
        tools=[WEATHER_TOOL],
        tool_choice={"type": "tool", "name": "get_weather"},
        messages=[{"role": "user", "content": "Weather in Madrid?"}],
    ) as stream:
        final = stream.get_final_message()
    use = next(b for b in final.content if b.type == "tool_use")
    assert use.name == "get_weather"
    assert isinstance(use.input["city"], str)
    assert final.stop_reason == "tool_use"


def test_count_tokens_matches_usage(claude: anthropic.Anthropic, model_name: str) -> None:
    counted = claude.messages.count_tokens(model=model_name, messages=QUESTION)
    reply = claude.messages.create(
        model=model_name, max_tokens=4, extra_body=GREEDY, messages=QUESTION
    )
    total_input = reply.usage.input_tokens + (reply.usage.cache_read_input_tokens or 0)
    assert counted.input_tokens == total_input


def test_errors_in_anthropic_shape(claude: anthropic.Anthropic, model_name: str) -> None:
    with pytest.raises(anthropic.NotFoundError) as missing:
        claude.messages.create(model="claude-nothing", max_tokens=4, messages=QUESTION)
    assert missing.value.body["error"]["type"] == "not_found_error"
    with pytest.raises(anthropic.BadRequestError) as bad:
        claude.messages.create(model=model_name, max_tokens=0, messages=QUESTION)
    assert bad.value.body["error"]["type"] == "invalid_request_error"
    assert "max_tokens" in bad.value.body["error"]["message"]
    bad_key = anthropic.Anthropic(base_url=str(claude.base_url), api_key="wrong", max_retries=0)
    with pytest.raises(anthropic.AuthenticationError):
        bad_key.messages.create(model=model_name, max_tokens=4, messages=QUESTION)


def test_output_config_json_schema(claude: anthropic.Anthropic, model_name: str) -> None:
    import json

    schema = {
        "type": "object",
        "properties": {"city": {"type": "string"}, "country": {"type": "string"}},
        "required": ["city", "country"],
    }
    reply = claude.messages.create(
        model=model_name,
        max_tokens=40,
        extra_body=GREEDY,
        output_config={"format": {"type": "json_schema", "schema": schema}},
        messages=[{"role": "user", "content": "Name a city and its country."}],
    )
    assert set(json.loads(reply.content[0].text)) == {"city", "country"}
