"""LangChain's chat models as a second real client of both APIs."""

from __future__ import annotations

import json

from langchain_anthropic import ChatAnthropic
from langchain_core.messages import HumanMessage, ToolMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI

from tests.api.conftest import API_KEY
from tests.support.uvicorn_thread import ThreadedServer


@tool
def get_weather(city: str) -> str:
    """Current weather for a city."""
    return f"Sunny in {city}"


def test_chat_openai_answers_and_calls_tools(server: ThreadedServer, model_name: str) -> None:
    chat = ChatOpenAI(
        base_url=f"{server.url}/v1", api_key=API_KEY, model=model_name, temperature=0, max_retries=0
    )
    answer = chat.invoke("What is the capital of France?", max_tokens=24)
    assert "Paris" in str(answer.content)
    with_tools = chat.bind_tools([get_weather], tool_choice="get_weather")
    asked = HumanMessage("Weather in Berlin?")
    called = with_tools.invoke([asked], max_tokens=48)
    assert called.tool_calls[0]["name"] == "get_weather"
    assert isinstance(called.tool_calls[0]["args"]["city"], str)
    result = ToolMessage(get_weather.invoke(called.tool_calls[0]["args"]),
                         tool_call_id=called.tool_calls[0]["id"])  # fmt: skip
    final = chat.bind_tools([get_weather]).invoke([asked, called, result], max_tokens=24)
    usage = final.response_metadata["token_usage"]
    assert usage["prompt_tokens_details"]["cached_tokens"] > 0


def test_chat_anthropic_answers_and_streams(server: ThreadedServer, model_name: str) -> None:
    # Greedy, as the OpenAI test: a sampled forced tool call can run past its token cap,
    # and a call cut off there carries no arguments to parse.
    chat = ChatAnthropic(
        base_url=server.url,
        api_key=API_KEY,
        model=model_name,
        max_tokens=24,
        max_retries=0,
        temperature=0,
    )
    answer = chat.invoke("What is the capital of France?")
    assert answer.content
    streamed = "".join(str(chunk.content) for chunk in chat.stream("Say hello."))
    assert streamed
    with_tools = chat.bind_tools([get_weather], tool_choice="get_weather")
    called = with_tools.invoke("Weather in Vienna?", max_tokens=64)
    assert called.tool_calls[0]["name"] == "get_weather"
    assert json.dumps(called.tool_calls[0]["args"])
