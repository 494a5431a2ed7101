"""Structured output on the bundled model: the text always parses and validates."""

from __future__ import annotations

import json
import re

import pytest

from roost.engine import Engine, SamplingParams, StructuredOutput
from roost.errors import InvalidRequest

pytestmark = pytest.mark.slow

PERSON = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
    "required": ["name", "age"],
    "additionalProperties": False,
}
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "add",
            "parameters": {
                "type": "object",
                "properties": {"a": {"type": "number"}, "b": {"type": "number"}},
                "required": ["a", "b"],
            },
        },
    },
]


def _chat(engine: Engine, text: str) -> list[int]:
    return engine.apply_chat_template([{"role": "user", "content": text}])


def test_json_schema_output_validates(smollm_engine: Engine) -> None:
    prompt = _chat(smollm_engine, "Describe a person named Alice aged 30 as JSON.")
    params = [
        SamplingParams(
            temperature=t, seed=s, max_tokens=80, structured=StructuredOutput(json_schema=PERSON)
        )
        for t, s in ((0.0, 0), (1.0, 1), (1.0, 2))
    ]
    for out in smollm_engine.generate([prompt] * 3, params):
        assert out.finish_reason == "stop"
        value = json.loads(out.text)
        assert set(value) == {"name", "age"}
        assert isinstance(value["name"], str)
        assert isinstance(value["age"], int)


def test_regex_output_matches(smollm_engine: Engine) -> None:
    prompt = _chat(smollm_engine, "Give me a product code.")
    spec = StructuredOutput(regex=r"[A-Z]{3}-[0-9]{4}")
    [out] = smollm_engine.generate(prompt, SamplingParams(temperature=1.0, seed=5, structured=spec))
    assert re.fullmatch(r"[A-Z]{3}-[0-9]{4}", out.text)


def test_tool_call_is_one_of_the_tools_with_valid_arguments(smollm_engine: Engine) -> None:
    prompt = _chat(smollm_engine, "What's the weather in Paris?")
    spec = StructuredOutput(tool_calls=TOOLS)
    [out] = smollm_engine.generate(
        prompt, SamplingParams(temperature=0, max_tokens=60, structured=spec)
    )
    call = json.loads(out.text)
    assert call["name"] in {"get_weather", "add"}
    if call["name"] == "get_weather":
        assert set(call["arguments"]) == {"city"}
    else:
        assert set(call["arguments"]) == {"a", "b"}


def test_invalid_grammar_is_rejected_up_front(smollm_engine: Engine) -> None:
    with pytest.raises(InvalidRequest) as caught:
        smollm_engine.generate("x", SamplingParams(structured=StructuredOutput(regex="(unclosed")))
    assert caught.value.param == "response_format"
