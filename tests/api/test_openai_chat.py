"""/v1/chat/completions through the official openai SDK against a real server."""

from __future__ import annotations

import json

import openai
import pytest

from roost.engine import Engine

QUESTION = [{"role": "user", "content": "What is the capital of France?"}]
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
TIME_TOOL = {
    "type": "function",
    "function": {
        "name": "get_time",
        "description": "Current local time in a timezone",
        "parameters": {
            "type": "object",
            "properties": {"timezone": {"type": "string"}},
            "required": ["timezone"],
        },
    },
}


def test_completion_answers_with_usage(oai: openai.OpenAI, model_name: str) -> None:
    reply = oai.chat.completions.create(
        model=model_name, messages=QUESTION, temperature=0, max_tokens=24
    )
    choice = reply.choices[0]
    assert "Paris" in (choice.message.content or "")
    assert choice.finish_reason == "stop"
    assert reply.model == model_name
    assert reply.usage is not None
    assert reply.usage.completion_tokens > 0
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens


def test_stream_matches_non_stream_and_reports_usage(oai: openai.OpenAI, model_name: str) -> None:
    whole = oai.chat.completions.create(
        model=model_name, messages=QUESTION, temperature=0, max_tokens=24
    )
    chunks = list(
        oai.chat.completions.create(
            model=model_name,
            messages=QUESTION,
            temperature=0,
            max_tokens=24,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert len({c.id for c in chunks}) == 1
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] == "stop"
    assert all(f is None for f in finishes[:-1])
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == whole.usage.completion_tokens


def test_seed_makes_sampling_reproducible(oai: openai.OpenAI, model_name: str) -> None:
    def sample(seed: int) -> str:
        reply = oai.chat.completions.create(
            model=model_name,
            messages=[{"role": "user", "content": "Write a short poem about the sea."}],
            temperature=1.0,
            max_tokens=24,
            seed=seed,
        )
        return reply.choices[0].message.content or ""

    first = sample(7)
    assert sample(7) == first
    assert any(sample(seed) != first for seed in (8, 9, 10))


def test_max_tokens_ends_with_length(oai: openai.OpenAI, model_name: str) -> None:
    reply = oai.chat.completions.create(
        model=model_name,
        messages=[{"role": "user", "content": "Tell me a long story about a dragon."}],
        temperature=0,
        max_completion_tokens=5,
    )
    assert reply.choices[0].finish_reason == "length"
    assert reply.usage is not None
    assert reply.usage.completion_tokens == 5


def test_stop_sequence_is_enforced(oai: openai.OpenAI, model_name: str) -> None:
    full = oai.chat.completions.create(
        model=model_name, messages=QUESTION, temperature=0, max_tokens=24
    )
    text = full.choices[0].message.content or ""
    assert "Paris" in text
    cut = oai.chat.completions.create(
        model=model_name,
        messages=QUESTION,
        temperature=0,
        max_tokens=24,
        stop=["Paris"],
    )
    assert cut.choices[0].message.content == text[: text.index("Paris")]
    assert cut.choices[0].finish_reason == "stop"


def test_n_choices(oai: openai.OpenAI, model_name: str) -> None:
    reply = oai.chat.completions.create(
        model=model_name,
        messages=QUESTION,
        n=2,
        max_tokens=8,
        temperature=0.8,
        seed=1,
    )
    assert [c.index for c in reply.choices] == [0, 1]


def test_logprobs(oai: openai.OpenAI, model_name: str) -> None:
    reply = oai.chat.completions.create(
        model=model_name,
        messages=QUESTION,
        max_tokens=4,
        temperature=0,
        logprobs=True,
        top_logprobs=2,
    )
    content = reply.choices[0].logprobs.content
    assert content is not None
    assert len(content) == reply.usage.completion_tokens
    for entry in content:
        assert entry.logprob <= 0
        assert len(entry.top_logprobs) == 2
        # Greedy: the chosen token is the most likely one.
        assert entry.logprob == pytest.approx(max(t.logprob for t in entry.top_logprobs))


@pytest.mark.parametrize(
    "choice", ["required", {"type": "function", "function": {"name": "get_time"}}]
)
def test_forced_tool_calls_parse_and_validate(
    oai: openai.OpenAI, model_name: str, choice: object
) -> None:
    reply = oai.chat.completions.create(
        model=model_name,
        messages=[{"role": "user", "content": "What's the weather in Paris right now?"}],
        tools=[WEATHER_TOOL, TIME_TOOL],
        tool_choice=choice,
        temperature=0,
        max_tokens=64,
    )
    message = reply.choices[0].message
    assert reply.choices[0].finish_reason == "tool_calls"
    assert message.tool_calls
    for call in message.tool_calls:
        arguments = json.loads(call.function.arguments)
        schema_key = "city" if call.function.name == "get_weather" else "timezone"
        assert set(arguments) == {schema_key}
        assert isinstance(arguments[schema_key], str)
        assert call.id.startswith("call_")
    if isinstance(choice, dict):
        assert {c.function.name for c in message.tool_calls} == {"get_time"}


def test_tool_choice_none_answers_in_text(oai: openai.OpenAI, model_name: str) -> None:
    reply = oai.chat.completions.create(
        model=model_name,
        messages=[{"role": "user", "content": "What's the weather in Paris?"}],
        tools=[WEATHER_TOOL],
        tool_choice="none",
        temperature=0,
        max_tokens=16,
    )
    assert reply.choices[0].message.tool_calls is None
    assert reply.choices[0].message.content


def test_streamed_tool_call_deltas(oai: openai.OpenAI, model_name: str) -> None:
    stream = oai.chat.completions.create(
        model=model_name,
        messages=[{"role": "user", "content": "Weather in Rome?"}],
        tools=[WEATHER_TOOL],
        tool_choice="required",
        temperature=0,
        max_tokens=64,
        stream=True,
    )
    deltas = [d for chunk in stream for c in chunk.choices for d in (c.delta.tool_calls or [])]
    assert deltas[0].id and deltas[0].type == "function"
    assert deltas[0].function is not None
    assert deltas[0].function.name == "get_weather"
    assert all(d.index == 0 for d in deltas)
    arguments = "".join(d.function.arguments or "" for d in deltas if d.function)
    assert set(json.loads(arguments)) == {"city"}


def test_tool_result_round_trip_reuses_the_cache(oai: openai.OpenAI, model_name: str) -> None:
    messages: list[dict[str, object]] = [{"role": "user", "content": "Weather in Oslo?"}]
    first = oai.chat.completions.create(
        model=model_name,
        messages=messages,
        tools=[WEATHER_TOOL],
        tool_choice="required",
        temperature=0,
        max_tokens=64,
    )
    call = first.choices[0].message.tool_calls[0]
    messages.append(first.choices[0].message.model_dump(exclude_none=True))
    messages.append({"role": "tool", "tool_call_id": call.id, "content": "Sunny, 21 C"})
    second = oai.chat.completions.create(
        model=model_name,
        messages=messages,
        tools=[WEATHER_TOOL],
        temperature=0,
        max_tokens=32,
    )
    usage = second.usage
    assert usage is not None
    assert usage.prompt_tokens_details is not None
    cached = usage.prompt_tokens_details.cached_tokens or 0
    # Everything up to the end of the previous prompt plus the generated call is reused,
    # give or take the last partial KV block.
    assert cached >= first.usage.prompt_tokens - 16


def test_json_schema_response_format(oai: openai.OpenAI, model_name: str) -> None:
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
        "required": ["name", "age"],
    }
    reply = oai.chat.completions.create(
        model=model_name,
        messages=[{"role": "user", "content": "Invent a person."}],
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "person", "schema": schema},
        },
        temperature=0,
        max_tokens=40,
    )
    person = json.loads(reply.choices[0].message.content or "")
    assert set(person) == {"name", "age"}
    assert isinstance(person["age"], int)


def test_models_endpoint(oai: openai.OpenAI, model_name: str) -> None:
    assert [m.id for m in oai.models.list()] == [model_name]
    assert oai.models.retrieve(model_name).id == model_name
    with pytest.raises(openai.NotFoundError):
        oai.models.retrieve("gpt-nothing")


def test_errors_in_openai_shape(oai: openai.OpenAI, model_name: str, engine: Engine) -> None:
    with pytest.raises(openai.NotFoundError) as missing:
        oai.chat.completions.create(model="gpt-nothing", messages=QUESTION)
    assert "gpt-nothing" in missing.value.message
    with pytest.raises(openai.BadRequestError) as bad:
        oai.chat.completions.create(model=model_name, messages=QUESTION, temperature=5)
    assert bad.value.body["param"] == "temperature"
    with pytest.raises(openai.BadRequestError) as unsupported:
        oai.chat.completions.create(
            model=model_name,
            messages=QUESTION,
            logit_bias={"1": 5},
        )
    assert unsupported.value.body["param"] == "logit_bias"
    too_long = [{"role": "user", "content": "word " * (engine.context_length + 10)}]
    with pytest.raises(openai.BadRequestError) as overflow:
        oai.chat.completions.create(model=model_name, messages=too_long)
    assert "context" in overflow.value.message
    bad_key = openai.OpenAI(base_url=str(oai.base_url), api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad_key.chat.completions.create(model=model_name, messages=QUESTION)


def test_legacy_completions(oai: openai.OpenAI, model_name: str) -> None:
    reply = oai.completions.create(
        model=model_name, prompt="The capital of France is", max_tokens=4, temperature=0, echo=True
    )
    assert reply.choices[0].text.startswith("The capital of France is")
    assert reply.usage is not None
    assert reply.usage.completion_tokens == 4
    assert reply.choices[0].finish_reason == "length"
    two = oai.completions.create(
        model=model_name, prompt=["One", "Two"], max_tokens=2, n=2, seed=3, temperature=1
    )
    assert len(two.choices) == 4


def test_embeddings_float_and_base64(oai: openai.OpenAI) -> None:
    import base64

    import numpy as np

    texts = ["a cat sits on the mat", "a kitten rests on a rug", "quarterly tax filing deadline"]
    result = oai.embeddings.create(model="all-MiniLM-L6-v2", input=texts)
    vectors = np.array([d.embedding for d in result.data])
    assert vectors.shape == (3, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    similar, unrelated = vectors[0] @ vectors[1], vectors[0] @ vectors[2]
    assert similar > unrelated + 0.2
    assert result.usage.prompt_tokens > 0
    encoded = oai.embeddings.create(
        model="all-MiniLM-L6-v2", input=texts[0], encoding_format="base64"
    )
    raw = encoded.data[0].embedding
    decoded = np.frombuffer(base64.b64decode(raw), dtype="<f4") if isinstance(raw, str) else raw
    assert np.allclose(decoded, vectors[0], atol=1e-5)
    with pytest.raises(openai.NotFoundError):
        oai.embeddings.create(model="text-embedding-3-small", input="x")
    with pytest.raises(openai.BadRequestError) as bad:
        oai.embeddings.create(model="all-MiniLM-L6-v2", input="x", dimensions=64)
    assert bad.value.body["param"] == "dimensions"


def test_client_disconnect_cancels_generation(
    server: object, engine: Engine, model_name: str
) -> None:
    import time

    import httpx

    from tests.api.conftest import API_KEY

    url = f"{server.url}/v1/chat/completions"
    body = {
        "model": model_name,
        "messages": [{"role": "user", "content": "Count from one to one thousand in words."}],
        "max_tokens": 2000,
        "stream": True,
        "temperature": 0,
    }
    headers = {"Authorization": f"Bearer {API_KEY}"}
    with httpx.stream("POST", url, json=body, headers=headers, timeout=60) as response:
        assert response.status_code == 200
        lines = response.iter_lines()
        received = [next(lines) for _ in range(6)]
        assert any('"content"' in line for line in received)
        assert engine.stats()["num_running"] == 1
    # The server notices the closed connection and cancels; wait for that, boundedly.
    deadline = time.monotonic() + 20
    while engine.stats()["num_running"] and time.monotonic() < deadline:
        time.sleep(0.05)
    stats = engine.stats()
    assert stats["num_running"] == 0
    assert stats["num_waiting"] == 0
