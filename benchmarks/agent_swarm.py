"""The agent-swarm workload of benchmarks/agent_cache.py, served by Roost and by llama-cpp-python.

32 agents share a 1,000-token system prompt; each has its own growing history and takes 6
turns (50 new user tokens in, 32 generated tokens out). All agents run at once: each is a
thread that sends its next turn as soon as the previous one is answered. Time to first
token counts from the moment an agent sends a turn, so time spent queued counts too.
"""

from __future__ import annotations

import queue
import random
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from roost.engine import Engine, SamplingParams
from roost.engine.outputs import EngineEvent

# Answers one turn: (agent, prompt token ids) -> (generated token ids, seconds to first token).
ServeTurn = Callable[[int, list[int]], tuple[list[int], float]]


@dataclass(slots=True)
class Workload:
    system: list[int]
    user_turns: list[list[list[int]]]  # [agent][turn] -> new user tokens
    generated_per_turn: int

    @property
    def num_agents(self) -> int:
        return len(self.user_turns)


@dataclass(slots=True)
class SwarmResult:
    wall_s: float
    ttft_s: list[float] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        ordered = sorted(self.ttft_s)
        return {
            "wall_s": self.wall_s,
            "requests": len(ordered),
            "ttft_p50_s": statistics.median(ordered),
            "ttft_p95_s": ordered[int(0.95 * (len(ordered) - 1))],
        }


def build_workload(
    vocab: list[int], *, agents: int, turns: int, system_tokens: int, user_tokens: int, gen: int
) -> Workload:
    """Token ids drawn from ordinary word tokens, seeded: both servers get the same prompts."""
    rng = random.Random(7)
    system = [rng.choice(vocab) for _ in range(system_tokens)]
    users = [
        [[rng.choice(vocab) for _ in range(user_tokens)] for _ in range(turns)]
        for _ in range(agents)
    ]
    return Workload(system, users, gen)


def run_swarm(workload: Workload, serve: ServeTurn) -> SwarmResult:
    result = SwarmResult(wall_s=0.0)
    lock = threading.Lock()
    errors: list[BaseException] = []

    def agent(index: int) -> None:
        history = list(workload.system)
        try:
            for user in workload.user_turns[index]:
                history += user
                reply, ttft = serve(index, list(history))
                history += reply
                with lock:
                    result.ttft_s.append(ttft)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=agent, args=(i,)) for i in range(workload.num_agents)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    result.wall_s = time.perf_counter() - started
    if errors:
        raise errors[0]
    return result


def roost_server(engine: Engine, gen: int) -> ServeTurn:
    """Each agent is a session of one tenant: its KV stays cached between its turns."""
    params = SamplingParams(temperature=0.0, max_tokens=gen, ignore_eos=True)

    def serve(agent: int, prompt: list[int]) -> tuple[list[int], float]:
        events: queue.SimpleQueue[EngineEvent] = queue.SimpleQueue()
        sent = time.perf_counter()
        engine.submit(prompt, params, events.put, tenant_id="swarm", session_id=f"agent-{agent}")
        tokens: list[int] = []
        first: float | None = None
        while True:
            event = events.get()
            if first is None and event.token_ids:
                first = time.perf_counter() - sent
            tokens += event.token_ids
            if event.finished:
                if event.finish_reason != "length":
                    raise RuntimeError(f"roost request ended with {event.finish_reason}")
                assert first is not None
                return tokens, first

    return serve


def llama_cpp_server(
    model_path: Path, gen: int, *, n_ctx: int, threads: int, agents: int
) -> ServeTurn:
    """llama-cpp-python in its best configuration here: a RAM prompt cache big enough for
    every agent's state at full context. One Llama object serves one request at a time
    (as its server does), so concurrent agents queue for it.

    The cache's capacity counts only the saved KV state; each entry also keeps a copy of
    the logits buffer (n_batch x vocab floats, ~100 MB here), so a capacity far beyond what
    the agents need runs the machine out of memory rather than helping.
    """
    from llama_cpp import Llama, LlamaRAMCache

    llm = Llama(
        str(model_path), n_ctx=n_ctx, n_threads=threads, n_threads_batch=threads, verbose=False
    )
    probe = llm.tokenize(b" the river carries silt" * 64, add_bos=False)[:256]
    llm.eval(probe)
    bytes_per_token = llm.save_state().llama_state_size / len(probe)
    llm.reset()
    llm.set_cache(LlamaRAMCache(capacity_bytes=int(agents * n_ctx * bytes_per_token)))
    eos = llm.token_eos()
    lock = threading.Lock()

    def serve(agent: int, prompt: list[int]) -> tuple[list[int], float]:
        sent = time.perf_counter()
        with lock:
            first: float | None = None
            pieces: list[str] = []
            for chunk in llm.create_completion(
                prompt,
                max_tokens=gen,
                temperature=0.0,
                stream=True,
                logit_bias={eos: -100.0},
            ):
                if first is None:
                    first = time.perf_counter() - sent
                pieces.append(chunk["choices"][0]["text"])  # type: ignore[index]
            # The stream carries text; its tokens continue the agent's history.
            reply = llm.tokenize("".join(pieces).encode(), add_bos=False, special=True)
        assert first is not None
        return reply, first

    return serve
