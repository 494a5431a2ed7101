"""The engine end to end on the bundled model: batching, caching, streaming, limits."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from roost.engine import Engine, EngineConfig, SamplingParams
from roost.errors import InvalidRequest

pytestmark = pytest.mark.slow


def _chat(engine: Engine, text: str) -> list[int]:
    return engine.apply_chat_template([{"role": "user", "content": text}])


def test_answers_coherently_and_reports_usage(smollm_engine: Engine) -> None:
    [out] = smollm_engine.generate(
        _chat(smollm_engine, "What is the capital of France?"),
        SamplingParams(temperature=0, max_tokens=32),
    )
    assert "Paris" in out.text
    assert out.finish_reason == "stop"
    assert out.stop_reason == 2  # <|im_end|>
    usage = out.usage
    assert usage.prompt_tokens == len(out.prompt_token_ids)
    assert usage.completion_tokens == len(out.token_ids)
    assert usage.time_to_first_token_s is not None
    assert 0 < usage.time_to_first_token_s <= usage.total_time_s
    assert usage.decode_time_s >= 0


def test_batched_greedy_equals_single_greedy(smollm_engine: Engine) -> None:
    prompts = [
        _chat(smollm_engine, q)
        for q in ("Name three colors.", "What is 2+2?", "Say hello in French.")
    ]
    params = SamplingParams(temperature=0, max_tokens=8, ignore_eos=True)
    batched = smollm_engine.generate(prompts, params)
    single = [smollm_engine.generate(p, params)[0] for p in prompts]
    assert [o.token_ids for o in batched] == [o.token_ids for o in single]


def test_agents_under_one_system_prompt_share_its_attention_and_its_prefill(
    model_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    system = {"role": "system", "content": "You are the harbour master's assistant. " * 12}
    questions = ("Which boats leave today?", "Is the tide high?", "Who keeps the lighthouse?")
    config = EngineConfig(home=model_home, dtype="float32", kv_cache_gb=0.1, max_num_seqs=4)
    params = SamplingParams(temperature=0, max_tokens=12, ignore_eos=True)
    with Engine(config) as engine:
        prompts = [
            engine.apply_chat_template([system, {"role": "user", "content": q}]) for q in questions
        ]
        alone = [engine.generate(p, params)[0].token_ids for p in prompts]
    groups: list[list[tuple[list[int], int]]] = []
    with Engine(config) as engine:
        find_groups = engine.runner._shared_prefixes

        def recording(starts: list[int], tables: list[list[int]]) -> object:
            found = find_groups(starts, tables)
            groups.append(found[0])
            return found

        monkeypatch.setattr(engine.runner, "_shared_prefixes", recording)
        together = engine.generate(prompts, params)  # submitted at once
    assert [o.token_ids for o in together] == alone
    # The system prompt was prefilled once: the other two waited for its blocks.
    block = config.block_size
    shared = next(i for i, (x, y) in enumerate(zip(*prompts[:2], strict=False)) if x != y)
    assert [o.usage.cached_prompt_tokens for o in together[1:]] == [shared // block * block] * 2
    # Decode steps attended to the prompt's blocks once for all three sequences.
    assert any(rows == [0, 1, 2] and n >= shared // block - 1 for g in groups for rows, n in g)


def test_shared_prefix_is_served_from_cache(smollm_engine: Engine) -> None:
    system = {"role": "system", "content": "You are a terse assistant for the Roost project. " * 4}
    first = smollm_engine.apply_chat_template([system, {"role": "user", "content": "Hi"}])
    second = smollm_engine.apply_chat_template([system, {"role": "user", "content": "Bye"}])
    params = SamplingParams(temperature=0, max_tokens=4, ignore_eos=True)
    [a] = smollm_engine.generate(first, params)
    [b] = smollm_engine.generate(second, params)
    block = smollm_engine.config.block_size
    shared = next(i for i, (x, y) in enumerate(zip(first, second, strict=False)) if x != y)
    assert b.usage.cached_prompt_tokens == shared // block * block
    assert b.usage.cached_prompt_tokens >= 32
    # A cache hit must not change the result.
    [b_again] = smollm_engine.generate(second, params)
    assert b_again.token_ids == b.token_ids
    assert a.usage.prompt_tokens == len(first)


def test_stop_strings_and_max_tokens(smollm_engine: Engine) -> None:
    prompt = _chat(smollm_engine, "Count from 1 to 10, separated by commas.")
    [free] = smollm_engine.generate(prompt, SamplingParams(temperature=0, max_tokens=24))
    assert "4" in free.text
    cut = free.text.index("4")
    [stopped] = smollm_engine.generate(
        prompt, SamplingParams(temperature=0, max_tokens=24, stop=["4"])
    )
    assert stopped.text == free.text[:cut]
    assert (stopped.finish_reason, stopped.stop_reason) == ("stop", "4")
    [short] = smollm_engine.generate(prompt, SamplingParams(temperature=0, max_tokens=3))
    assert short.finish_reason == "length"
    assert len(short.token_ids) == 3


def test_seeded_sampling_is_reproducible_and_logprobs_are_reported(smollm_engine: Engine) -> None:
    prompt = _chat(smollm_engine, "Tell me a story.")
    params = SamplingParams(
        temperature=1.0,
        top_p=0.9,
        seed=7,
        max_tokens=10,
        logprobs=True,
        top_logprobs=3,
        ignore_eos=True,
    )
    [a] = smollm_engine.generate(prompt, params)
    [b, _other] = smollm_engine.generate([prompt, prompt], [params, SamplingParams(max_tokens=10)])
    assert a.token_ids == b.token_ids
    assert len(a.logprobs) == 10
    assert all(lp.logprob <= 0 and len(lp.top) == 3 for lp in a.logprobs)


def test_prompt_longer_than_context_is_rejected_before_any_work(smollm_engine: Engine) -> None:
    with pytest.raises(InvalidRequest) as caught:
        smollm_engine.generate([5] * (smollm_engine.context_length + 1))
    assert caught.value.param == "prompt"
    assert str(smollm_engine.context_length) in caught.value.message
    assert smollm_engine.stats()["num_running"] == 0


async def test_stream_yields_deltas_and_usage(smollm_engine: Engine) -> None:
    prompt = _chat(smollm_engine, "What is the capital of France?")
    events = [e async for e in smollm_engine.stream(prompt, SamplingParams(temperature=0))]
    [whole] = smollm_engine.generate(prompt, SamplingParams(temperature=0))
    assert "".join(e.text for e in events) == whole.text
    assert [t for e in events for t in e.token_ids] == whole.token_ids
    assert events[-1].finished
    assert events[-1].usage is not None
    assert not any(e.finished for e in events[:-1])


async def test_stream_rejects_bad_input_before_iteration(smollm_engine: Engine) -> None:
    with pytest.raises(InvalidRequest) as caught:
        smollm_engine.stream([5] * (smollm_engine.context_length + 1))
    assert caught.value.param == "prompt"


async def test_leaving_the_stream_cancels_and_frees_blocks(smollm_engine: Engine) -> None:
    prompt = _chat(smollm_engine, "Write a very long essay about the history of Rome.")
    stream = smollm_engine.stream(prompt, SamplingParams(max_tokens=500, ignore_eos=True))
    async for event in stream:
        if event.token_ids:
            break
    await stream.aclose()
    # Cancellation is handled by the worker before its next step; wait for that, bounded.
    for _ in range(200):
        if smollm_engine.stats()["num_running"] == 0:
            break
        await asyncio.sleep(0.01)
    stats = smollm_engine.stats()
    assert stats["num_running"] == 0
    assert stats["kv_blocks_used"] == 0


def test_small_kv_pool_preempts_instead_of_failing(model_home: Path) -> None:
    config = EngineConfig(
        home=model_home, dtype="float32", kv_cache_gb=0.0063, block_size=16, max_num_seqs=8
    )
    with Engine(config) as engine:
        assert engine.pool.num_blocks < 20
        prompts = [_chat(engine, f"Tell me about the number {i}.") for i in range(3)]
        params = SamplingParams(temperature=0, max_tokens=24, ignore_eos=True)
        outputs = engine.generate(prompts, params)
        assert all(len(o.token_ids) == 24 for o in outputs)
        assert sum(o.usage.num_preemptions for o in outputs) > 0
        alone = engine.generate(prompts[2], params)[0]
        assert outputs[2].token_ids == alone.token_ids
        assert engine.stats()["kv_blocks_used"] == 0


def test_metrics_reflect_activity(smollm_engine: Engine) -> None:
    from prometheus_client import generate_latest

    smollm_engine.generate(_chat(smollm_engine, "Hi"), SamplingParams(max_tokens=3))
    registry = smollm_engine.metrics.registry
    text = generate_latest(registry).decode()
    assert "roost_engine_kv_blocks_free" in text
    generated = registry.get_sample_value("roost_engine_generation_tokens_total")
    assert generated is not None
    assert generated >= 3
    assert registry.get_sample_value("roost_engine_prompt_tokens_total")
    assert registry.get_sample_value("roost_engine_running_sequences") is not None
