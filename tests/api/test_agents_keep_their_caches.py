"""Many agents at once against `roost serve` with its default settings, each sending its
conversation back as text: a returning agent prefills only its new text, never its history.
"""

from __future__ import annotations

import random
import re
import threading
from pathlib import Path

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from roost.engine import Engine
from tests.support.process import start_server

KEY = "swarm-test-key-0123456789abcdef"
AGENTS = 32
TURNS = 3
BLOCK = 16
TEMPLATE_OVERHEAD = 12
WORDS = [
    "the",
    "river",
    "carries",
    "silt",
    "from",
    "mountains",
    "to",
    "a",
    "delta",
    "where",
    "birds",
    "rest",
    "and",
    "gulls",
    "cry",
]


def words(rng: random.Random, count: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(count))


def prefilled_counter(url: str) -> float:
    text = httpx.get(f"{url}/metrics").text
    found = re.search(r'roost_kv_session_prompt_tokens_total\{source="prefilled"\} (\S+)', text)
    return float(found.group(1)) if found else 0.0


@pytest.mark.slow
def test_returning_agents_prefill_only_their_new_text(model_home: Path, engine: Engine) -> None:
    # model_home holds the converted model already (the session's engine made it).
    server = start_server(
        {"ROOST_HOME": str(model_home), "ROOST_API_KEY": KEY},
        ready_marker="model loaded",
        timeout_s=180,
    )
    rng = random.Random(3)
    system = words(rng, 300)
    turns = [[words(rng, 30) for _ in range(TURNS)] for _ in range(AGENTS)]
    excess: list[tuple[int, int, int, int]] = []  # (agent, turn, prefilled, allowed)
    new_tokens: list[int] = [len(engine.tokenizer.encode(system))]
    errors: list[BaseException] = []
    lock = threading.Lock()

    def agent(index: int) -> None:
        oai = openai.OpenAI(base_url=f"{server.url}/v1", api_key=KEY, max_retries=0)
        messages: list[ChatCompletionMessageParam] = [{"role": "system", "content": system}]
        try:
            for number, text in enumerate(turns[index]):
                messages.append({"role": "user", "content": text})
                reply = oai.chat.completions.create(
                    model=engine.model_name,
                    messages=messages,
                    max_tokens=16,
                    # Sampled, as clients usually run: replies then often spell words in
                    # ids their text does not encode back to.
                    temperature=1.0,
                    seed=index * 100 + number,
                    extra_headers={"X-Roost-Session": f"swarm-agent-{index}"},
                )
                usage = reply.usage
                assert usage is not None and usage.prompt_tokens_details is not None
                prefilled = usage.prompt_tokens - (usage.prompt_tokens_details.cached_tokens or 0)
                allowed = len(engine.tokenizer.encode(text)) + TEMPLATE_OVERHEAD + BLOCK
                with lock:
                    new_tokens.append(len(engine.tokenizer.encode(text)) + usage.completion_tokens)
                    if number > 0 and prefilled > allowed:
                        excess.append((index, number, prefilled, allowed))
                messages.append(
                    {"role": "assistant", "content": reply.choices[0].message.content or ""}
                )
        except BaseException as exc:  # surfaced below, in the test's thread
            errors.append(exc)

    try:
        before = prefilled_counter(server.url)
        threads = [threading.Thread(target=agent, args=(i,)) for i in range(AGENTS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        prefilled_total = prefilled_counter(server.url) - before
    finally:
        server.stop()
    assert not errors, errors[0]
    assert not excess, f"returning agents re-prefilled their history: {excess}"
    # The server's own counter: what it prefilled is what was new, plus template tokens.
    assert prefilled_total <= 1.5 * sum(new_tokens)
