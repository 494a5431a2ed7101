"""Agent caches as clients see them: ``roost serve`` with its default settings, driven by
the official ``openai`` SDK over HTTP, every conversation sent back as text each turn.

- ttft: an agent returns with ~C tokens of history plus ~60 new ones. Time to the first
  streamed token hot (its cache in the server), on the first request after a server
  restart (caches written to disk at shutdown), and cold (the same prompt under a new
  session, with a changed first word so no prefix is shared).
- swarm: N agents share a ~1,000-token system prompt, each with its own opening and
  history, T turns each (~50 new user tokens, 32 generated), all concurrent. Prompt tokens
  the server prefilled (its own counters) against the tokens genuinely new in the workload
  (shared prompt once, each agent's opening, each turn's new text and the previous reply).
  Requests carry no temperature, as most clients send them (the server samples).
  With ``peer=True`` the same workload also runs against llama-cpp-python's own
  OpenAI-compatible server (``make bench-peers``) with its RAM prompt cache, in the same run.

Used by ``benchmarks/agent_cache.py --mode served``.
"""

from __future__ import annotations

import importlib.util
import os
import random
import re
import statistics
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import openai

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.process import ServerProcess, start_command, start_server
from tests.support.servers import free_port

KEY = "bench-served-key-0123456789abcdef"
SERVER_ENV: dict[str, str] = {}  # diagnostics only (--server-env); the figures use defaults
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
    "fishermen",
    "mend",
    "nets",
    "while",
    "children",
    "watch",
    "boats",
    "return",
    "at",
    "dusk",
    "under",
    "a",
    "red",
    "sky",
    "full",
    "of",
    "gulls",
    "crying",
    "over",
    "harbour",
    "walls",
    "built",
    "of",
    "grey",
    "stone",
    "by",
    "workers",
    "long",
    "ago",
    "in",
    "winter",
    "storms",
]


def words(rng: random.Random, count: int) -> str:
    """About ``count`` tokens of ordinary words (these words are one token each)."""
    return " ".join(rng.choice(WORDS) for _ in range(count))


@contextmanager
def served(home: Path) -> Iterator[ServerProcess]:
    """``roost serve`` with default settings on ``home`` (which holds the model)."""
    server = start_server(
        {"ROOST_HOME": str(home), "ROOST_API_KEY": KEY, **SERVER_ENV},
        ready_marker="model loaded",
        timeout_s=300,
    )
    try:
        yield server
    finally:
        server.stop()


def client(server: ServerProcess) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key=KEY, max_retries=0, timeout=900)


def model_name(server: ServerProcess) -> str:
    return str(client(server).models.list().data[0].id)


def turn(
    oai: openai.OpenAI,
    model: str,
    messages: list[Any],
    session: str,
    max_tokens: int,
    temperature: float | openai.Omit = 0,
) -> tuple[str, float, Any]:
    """One streamed turn: the reply's text, seconds to its first token, and its usage."""
    started = time.perf_counter()
    first: float | None = None
    parts: list[str] = []
    usage = None
    stream = oai.chat.completions.create(
        model=model,
        messages=messages,
        max_tokens=max_tokens,
        temperature=temperature,
        stream=True,
        stream_options={"include_usage": True},
        extra_headers={"X-Roost-Session": session},
    )
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            if first is None:
                first = time.perf_counter() - started
            parts.append(chunk.choices[0].delta.content)
        if chunk.usage is not None:
            usage = chunk.usage
    return "".join(parts), first if first is not None else time.perf_counter() - started, usage


def session_counters(server: ServerProcess) -> dict[str, float]:
    """The server's own counters: session prompt tokens by source, session lookups by
    tier, and preemptions."""
    text = httpx.get(f"{server.url}/metrics").text
    found = re.findall(r'roost_kv_session_prompt_tokens_total\{source="(\w+)"\} ([0-9.e+]+)', text)
    counters = {source: float(value) for source, value in found}
    for tier, value in re.findall(
        r'roost_kv_session_lookups_total\{tier="(\w+)"\} ([0-9.e+]+)', text
    ):
        counters[f"lookup_{tier}"] = float(value)
    preempted = re.search(r"^roost_engine_preemptions_total ([0-9.e+]+)", text, re.MULTILINE)
    counters["preemptions"] = float(preempted.group(1)) if preempted else 0.0
    return counters


def history(rng: random.Random, context: int) -> list[dict[str, str]]:
    """A conversation of about ``context`` tokens: a system prompt and 150-token turns."""
    messages = [{"role": "system", "content": words(rng, 200)}]
    while sum(len(m["content"].split()) for m in messages) < context - 150:
        messages.append({"role": "user", "content": words(rng, 70)})
        messages.append({"role": "assistant", "content": words(rng, 70)})
    return messages


def bench_ttft(home: Path, contexts: list[int], repeats: int = 3) -> dict[str, Any]:
    rng = random.Random(11)
    plans = {c: history(rng, c) for c in contexts}
    rows: dict[int, dict[str, Any]] = {c: {"hot": [], "cold": [], "restart": []} for c in contexts}
    after_restart: dict[int, list[list[dict[str, str]]]] = {c: [] for c in contexts}
    with served(home) as server:
        oai, model = client(server), model_name(server)
        for context, base in plans.items():
            for rep in range(repeats):
                session = f"ttft-{context}-{rep}-{time.time_ns()}"
                messages = [dict(m) for m in base]
                messages[0]["content"] = f"{rep} {session} " + messages[0]["content"]
                messages.append({"role": "user", "content": words(rng, 60)})
                reply, _, _ = turn(oai, model, messages, session, 8)  # the agent's last turn
                messages += [{"role": "assistant", "content": reply}]
                messages.append({"role": "user", "content": words(rng, 60)})
                reply, hot, usage = turn(oai, model, messages, session, 8)
                rows[context]["hot"].append(hot)
                rows[context]["prompt_tokens"] = usage.prompt_tokens
                cold_messages = [dict(m) for m in messages]
                cold_messages[0]["content"] = "cold " + cold_messages[0]["content"]
                _, cold, _ = turn(oai, model, cold_messages, session + "-cold", 8)
                rows[context]["cold"].append(cold)
                messages += [{"role": "assistant", "content": reply}]
                messages.append({"role": "user", "content": words(rng, 60)})
                after_restart[context].append([{"session": session}, *messages])
    with served(home) as server:  # the first request of each session after a restart
        oai, model = client(server), model_name(server)
        for context, conversations in after_restart.items():
            for conversation in conversations:
                session = conversation[0]["session"]
                _, seconds, _ = turn(oai, model, conversation[1:], session, 8)
                rows[context]["restart"].append(seconds)
    out: dict[str, Any] = {}
    for context, row in rows.items():
        hot, cold, restart = (statistics.median(row[k]) for k in ("hot", "cold", "restart"))
        out[str(context)] = {
            "prompt_tokens": row["prompt_tokens"],
            "cold_s": cold,
            "hot_s": hot,
            "restart_s": restart,
            "hot_speedup": cold / hot,
            "restart_speedup": cold / restart,
        }
    return out


def bench_swarm(
    home: Path, agents: int, turns: int, gen: int = 32, *, peer: bool = False
) -> dict[str, Any]:
    """The swarm through ``roost serve``; with ``peer``, also through llama-cpp-python's
    server (when installed), and the ratios of the two."""
    workload = _SwarmWorkload(random.Random(7), agents, turns)
    with served(home) as server:  # converts the model into ``home`` on first use
        tokens = _token_counter(home)
        before = session_counters(server)
        result = _run_swarm(client(server), model_name(server), workload, tokens, gen)
        after = session_counters(server)
    prefilled = after.get("prefilled", 0) - before.get("prefilled", 0)
    result.update(
        prefilled_tokens=prefilled,
        reused_tokens=after.get("reused", 0) - before.get("reused", 0),
        prefilled_over_new=prefilled / max(1, result["new_tokens"]),
        counters={
            k: after[k] - before.get(k, 0) for k in after if k not in ("prefilled", "reused")
        },
    )
    if not peer:
        return result
    if importlib.util.find_spec("llama_cpp") is None:
        result["peer"] = "llama-cpp-python is not installed (make bench-peers)"
        return result
    with llama_cpp_served(home, agents) as peer_server:
        peer_client = openai.OpenAI(
            base_url=f"{peer_server.url}/v1", api_key="none", max_retries=0, timeout=3600
        )
        result["llama_cpp_python"] = _run_swarm(peer_client, "local", workload, tokens, gen)
    peer_result = result["llama_cpp_python"]
    result["ratios"] = {
        "wall": result["wall_s"] / peer_result["wall_s"],
        "ttft_p95": result["ttft_p95_s"] / peer_result["ttft_p95_s"],
    }
    return result


class _SwarmWorkload:
    """A shared ~1,000-token system prompt; per agent an opening and ``turns`` user texts."""

    def __init__(self, rng: random.Random, agents: int, turns: int) -> None:
        self.system = words(rng, 1000)
        self.openings = [words(rng, 50) for _ in range(agents)]
        self.users = [[words(rng, 50) for _ in range(turns)] for _ in range(agents)]


def _run_swarm(
    oai: openai.OpenAI, model: str, workload: _SwarmWorkload, tokens: Any, gen: int
) -> dict[str, Any]:
    """Every agent in its own thread, all at once; TTFTs (overall and per turn), wall time
    and new tokens."""
    ttfts: list[float] = []
    by_turn: dict[int, list[float]] = {}
    new_tokens = [tokens(workload.system)]
    lock = threading.Lock()
    errors: list[BaseException] = []

    def agent(index: int) -> None:
        session = f"swarm-{index}-{time.time_ns()}"
        messages: list[Any] = [{"role": "system", "content": workload.system}]
        new = tokens(workload.openings[index])
        try:
            for number, text in enumerate(workload.users[index]):
                opening = workload.openings[index]
                content = f"{opening} {text}" if number == 0 else text
                messages.append({"role": "user", "content": content})
                new += tokens(text)
                # No temperature, as most clients send it: the server's default sampling.
                reply, seconds, _ = turn(oai, model, messages, session, gen, openai.omit)
                messages.append({"role": "assistant", "content": reply})
                with lock:
                    ttfts.append(seconds)
                    by_turn.setdefault(number, []).append(seconds)
                    new_tokens[0] += new
                new = tokens(reply)  # the reply comes back next turn
        except BaseException as exc:
            errors.append(exc)

    started = time.perf_counter()
    threads = [threading.Thread(target=agent, args=(i,)) for i in range(len(workload.openings))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    if errors:
        raise errors[0]
    return {
        "agents": len(workload.openings),
        "turns": len(workload.users[0]),
        "wall_s": wall,
        "ttft_p50_s": _percentile(ttfts, 0.5),
        "ttft_p95_s": _percentile(ttfts, 0.95),
        # Where the tail comes from: the first turn (every agent arriving at once) or later.
        "ttft_by_turn": {
            number + 1: {"p50_s": _percentile(t, 0.5), "p95_s": _percentile(t, 0.95)}
            for number, t in sorted(by_turn.items())
        },
        "new_tokens": new_tokens[0],
    }


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


@contextmanager
def llama_cpp_served(home: Path, agents: int, n_ctx: int = 2048) -> Iterator[ServerProcess]:
    """llama-cpp-python's OpenAI-compatible server on the bundled GGUF, configured as
    well as it can be for this workload: all CPU threads, and a RAM prompt cache whose
    capacity holds every agent's state at full context (K/V in f16: 2 x layers x KV
    heads x head size x 2 bytes a token). It serves one request at a time."""
    from roost.engine.loader import resolve_model_path
    from roost.engine.model_config import ModelConfig

    config = ModelConfig.from_json((_converted_model(home) / "config.json").read_text())
    bytes_per_token = 2 * config.num_layers * config.num_kv_heads * config.head_dim * 2
    threads = str(os.cpu_count() or 2)
    port = free_port()
    argv = [
        sys.executable, "-m", "llama_cpp.server",
        "--model", str(resolve_model_path("smollm2-135m-instruct")),
        "--host", "127.0.0.1", "--port", str(port),
        "--n_ctx", str(n_ctx),
        "--n_threads", threads, "--n_threads_batch", threads,
        "--cache", "true", "--cache_type", "ram",
        "--cache_size", str(agents * n_ctx * bytes_per_token),
    ]  # fmt: skip
    server = start_command(argv, port, ready_marker="Uvicorn running", timeout_s=300)
    try:
        yield server
    finally:
        server.stop()


def _token_counter(home: Path) -> Any:
    """Token counts with the served model's own tokenizer (converted under ``home``)."""
    from roost.engine.tokenizer import Tokenizer, TokenizerSpec

    tokenizer = Tokenizer(TokenizerSpec.load(_converted_model(home)))
    return lambda text: len(tokenizer.encode(text))


def _converted_model(home: Path) -> Path:
    """The served model's converted directory under ``home`` (config and tokenizer)."""
    return next(p.parent for p in (home / "models").glob("*/tokenizer_meta.json"))
