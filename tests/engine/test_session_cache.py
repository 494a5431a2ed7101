"""Per-session KV caches on the real model: reuse across turns, tiers, restarts, safety."""

from __future__ import annotations

import queue
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from roost.engine import Engine, EngineConfig, SamplingParams
from roost.engine.outputs import EngineEvent, EngineUsage
from roost.kvcache import open_session_store

BLOCK = 16
TEXT = (
    "The lighthouse keeper wrote in his log every evening. He noted the wind, the colour of "
    "the sea, the ships that passed and the birds that rested on the gallery rail. "
)


def make_engine(model_home: Path, kv_dir: Path, **overrides: Any) -> Engine:
    config: dict[str, Any] = {
        "home": model_home,
        "dtype": "float32",
        "kv_cache_gb": 0.1,  # ~145 blocks of 16 tokens: small enough to fill in a test
        "block_size": BLOCK,
        "max_num_seqs": 8,
        "session_dir": kv_dir,
        "session_quantization": "none",
    }
    config.update(overrides)
    return Engine(EngineConfig(**config), session_store=open_session_store)


def run(
    engine: Engine,
    prompt: list[int],
    *,
    tenant: str | None = "tenant-a",
    session: str | None = None,
    max_tokens: int = 12,
) -> tuple[list[int], EngineUsage]:
    """Greedy-generate ``max_tokens`` tokens; returns them with the request's usage."""
    events: queue.SimpleQueue[EngineEvent] = queue.SimpleQueue()
    params = SamplingParams(temperature=0.0, max_tokens=max_tokens, ignore_eos=True)
    engine.submit(prompt, params, events.put, tenant_id=tenant, session_id=session)
    tokens: list[int] = []
    while True:
        event = events.get(timeout=300)
        tokens += event.token_ids
        if event.finished:
            assert event.finish_reason == "length", event.error
            assert event.usage is not None
            return tokens, event.usage


def flood(engine: Engine, rounds: int = 3) -> None:
    """Unrelated traffic that needs the whole pool, so unpinned cached blocks are evicted."""
    for index in range(rounds):
        filler = engine.tokenizer.encode(f"Filler {index}: " + "lorem ipsum dolor sit amet " * 250)
        run(engine, filler[:1500], tenant="someone-else", max_tokens=1)


def lookups(engine: Engine, tier: str) -> float | None:
    """How many session requests found their cache in ``tier``."""
    return engine.metrics.registry.get_sample_value(
        "roost_kv_session_lookups_total", {"tier": tier}
    )


def bytes_in(engine: Engine, tier: str) -> float | None:
    return engine.metrics.registry.get_sample_value("roost_kv_session_bytes", {"tier": tier})


def tier_of(engine: Engine, session: str) -> str:
    rows = [row for row in engine.session_caches() if row.session_id == session]
    assert len(rows) == 1, rows
    return rows[0].tier


@pytest.fixture
def kv_dir(tmp_path: Path) -> Path:
    return tmp_path / "kv"


@pytest.fixture
def conversation(smollm_engine: Engine) -> list[int]:
    return smollm_engine.tokenizer.encode(TEXT * 3)  # ~110 tokens


@pytest.fixture
def reference(model_home: Path, tmp_path: Path) -> Iterator[Engine]:
    """The same model with no caching at all: what every cached answer must equal."""
    engine = make_engine(
        model_home, tmp_path / "unused", enable_prefix_cache=False, session_cache=False
    )
    yield engine
    engine.close()


def computed_blocks(first: list[int], reply: list[int]) -> int:
    """Tokens of turn 1 a session keeps: prompt and reply but its last token, whole blocks."""
    return (len(first) + len(reply) - 1) // BLOCK * BLOCK


def second_turn(engine: Engine, first: list[int], reply: list[int]) -> list[int]:
    return first + reply + engine.tokenizer.encode(" The next morning")


def test_hot_session_survives_pool_pressure_that_evicts_the_shared_prefix_cache(
    model_home: Path, kv_dir: Path, conversation: list[int], reference: Engine
) -> None:
    with make_engine(model_home, kv_dir) as engine:
        reply, _ = run(engine, conversation, session="agent-1")
        run(engine, conversation, session=None, tenant="tenant-b")  # same text, no session
        flood(engine)
        turn2 = second_turn(engine, conversation, reply)
        tokens, usage = run(engine, turn2, session="agent-1")
        assert usage.cached_prompt_tokens == computed_blocks(conversation, reply)
        assert tier_of(engine, "agent-1") == "hot"
        # Without a session the same prefix was evicted by the flood.
        _, plain = run(engine, turn2, session=None, tenant="tenant-b")
        assert plain.cached_prompt_tokens == 0
    assert tokens == run(reference, turn2)[0]


def test_small_hot_budget_demotes_to_warm_and_warm_is_restored(
    model_home: Path, kv_dir: Path, conversation: list[int], reference: Engine
) -> None:
    with make_engine(model_home, kv_dir, session_hot_fraction=0.01) as engine:
        reply, _ = run(engine, conversation, session="agent-1")
        assert tier_of(engine, "agent-1") == "warm"
        flood(engine)
        turn2 = second_turn(engine, conversation, reply)
        tokens, usage = run(engine, turn2, session="agent-1")
        assert usage.cached_prompt_tokens == computed_blocks(conversation, reply)
        assert lookups(engine, "warm") == 1
    assert tokens == run(reference, turn2)[0]


def test_cold_cache_survives_an_engine_restart(
    model_home: Path, kv_dir: Path, conversation: list[int], reference: Engine
) -> None:
    with make_engine(model_home, kv_dir) as engine:
        reply, _ = run(engine, conversation, session="agent-1")
    files = list(kv_dir.rglob("*.safetensors"))
    assert len(files) == 1
    assert "agent-1" not in files[0].name and "tenant-a" not in files[0].name
    turn2 = second_turn(reference, conversation, reply)
    with make_engine(model_home, kv_dir) as restarted:
        assert tier_of(restarted, "agent-1") == "cold"
        tokens, usage = run(restarted, turn2, session="agent-1")
        assert usage.cached_prompt_tokens == computed_blocks(conversation, reply)
        assert lookups(restarted, "cold") == 1
        assert tier_of(restarted, "agent-1") == "hot"
    assert tokens == run(reference, turn2)[0]


def test_quantized_cold_cache_is_reused_after_restart(
    model_home: Path, kv_dir: Path, conversation: list[int]
) -> None:
    with make_engine(model_home, kv_dir, session_quantization="int8") as engine:
        reply, _ = run(engine, conversation, session="agent-1")
    with make_engine(model_home, kv_dir, session_quantization="int8") as restarted:
        _, usage = run(restarted, second_turn(restarted, conversation, reply), session="agent-1")
    assert usage.cached_prompt_tokens == computed_blocks(conversation, reply)


def test_edited_history_reuses_only_the_unchanged_prefix(
    model_home: Path, kv_dir: Path, conversation: list[int], reference: Engine
) -> None:
    with make_engine(model_home, kv_dir, session_hot_fraction=0.01) as engine:
        run(engine, conversation, session="agent-1")  # demoted to warm: compared by tokens
        flood(engine)
        edited = list(conversation)
        edited[40] = engine.tokenizer.encode(" storm")[0]
        tokens, usage = run(engine, edited, session="agent-1")
        assert usage.cached_prompt_tokens == 40 // BLOCK * BLOCK
        # The session now follows the edited branch.
        _, again = run(engine, edited, session="agent-1")
        assert again.cached_prompt_tokens == (len(edited) - 1) // BLOCK * BLOCK
    assert tokens == run(reference, edited)[0]


def test_tenants_never_share_cached_blocks_or_sessions(
    model_home: Path, kv_dir: Path, conversation: list[int]
) -> None:
    with make_engine(model_home, kv_dir) as engine:
        run(engine, conversation, tenant="tenant-a", session="shared-name")
        _, other = run(engine, conversation, tenant="tenant-b", session="shared-name")
        assert other.cached_prompt_tokens == 0
        _, same = run(engine, conversation, tenant="tenant-a", session="another")
        assert same.cached_prompt_tokens > 0  # within a tenant the prefix is shared
        rows = {(r.tenant_id, r.session_id) for r in engine.session_caches()}
        assert {("tenant-a", "shared-name"), ("tenant-b", "shared-name")} <= rows
        ids = {r.id for r in engine.session_caches()}
        assert len(ids) == len(rows)


def test_delete_and_offload(model_home: Path, kv_dir: Path, conversation: list[int]) -> None:
    with make_engine(model_home, kv_dir) as engine:
        run(engine, conversation, session="one")
        run(engine, conversation, session="two")
        hot_bytes = bytes_in(engine, "hot")
        assert hot_bytes and hot_bytes > 0
        engine.offload_session_caches().result(timeout=60)
        assert {r.tier for r in engine.session_caches()} == {"cold"}
        files = list(kv_dir.rglob("*.safetensors"))
        assert len(files) == 2
        assert bytes_in(engine, "hot") == 0
        assert bytes_in(engine, "cold") == sum(f.stat().st_size for f in files)
        (one,) = [r for r in engine.session_caches() if r.session_id == "one"]
        assert engine.delete_session_cache(one.id).result(timeout=60) is True
        assert engine.delete_session_cache(one.id).result(timeout=60) is False
        assert [r.session_id for r in engine.session_caches()] == ["two"]
        assert len(list(kv_dir.rglob("*.safetensors"))) == 1
        warmed = engine.warm_session_cache(engine.session_caches()[0].id).result(timeout=60)
        assert warmed is True
        assert tier_of(engine, "two") == "warm"


def test_a_corrupt_cold_file_is_deleted_and_the_request_prefilled(
    model_home: Path, kv_dir: Path, conversation: list[int], reference: Engine
) -> None:
    with make_engine(model_home, kv_dir) as engine:
        reply, _ = run(engine, conversation, session="agent-1")
    (path,) = kv_dir.rglob("*.safetensors")
    data = bytearray(path.read_bytes())
    data[-100] ^= 0xFF  # one flipped bit in the K/V payload
    path.write_bytes(bytes(data))
    turn2 = second_turn(reference, conversation, reply)
    with make_engine(model_home, kv_dir) as restarted:
        tokens, usage = run(restarted, turn2, session="agent-1")
        assert usage.cached_prompt_tokens == 0
        rejected = restarted.metrics.registry.get_sample_value(
            "roost_kv_session_rejected_total", {"reason": "corrupt"}
        )
        assert rejected == 1
        assert not path.exists()
        # The session starts over from this request.
        assert tier_of(restarted, "agent-1") == "hot"
    assert tokens == run(reference, turn2)[0]


def test_a_cache_of_another_quantization_is_never_loaded(
    model_home: Path, kv_dir: Path, conversation: list[int]
) -> None:
    with make_engine(model_home, kv_dir, session_quantization="int8") as engine:
        reply, _ = run(engine, conversation, session="agent-1")
        run(engine, conversation, session="agent-2")
    turn2 = second_turn(engine, conversation, reply)
    with make_engine(model_home, kv_dir, session_quantization="none") as other:
        assert other.session_caches() == []
        _, usage = run(other, turn2, session="agent-1")
        assert usage.cached_prompt_tokens == 0  # prefilled; its cache is saved unquantized
    with make_engine(model_home, kv_dir, session_quantization="int8") as back:
        # agent-2's int8 file was kept for this setting; agent-1's is now another scheme.
        assert [row.session_id for row in back.session_caches()] == ["agent-2"]
        _, usage = run(back, turn2, session="agent-2")
        assert usage.cached_prompt_tokens == computed_blocks(conversation, reply)
