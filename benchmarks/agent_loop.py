"""A 10-iteration ReAct run on the local model: prefill work and time per iteration with
the KV cache reused across iterations (the thread id as cache identity, prefix cache on)
against recomputing the whole transcript every iteration.

    python benchmarks/agent_loop.py [--iterations 10] [--tool-words 60] [--home ~/.roost]

Every iteration the agent calls a tool that returns ``--tool-words`` words, so the
transcript grows linearly. With reuse each model turn prefills only what was appended
since the previous turn; without it, the whole transcript. Writes
benchmarks/results/agent_loop.json and prints both curves.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from roost.agents.react import ReactAgent, run_input
from roost.agents.runtime import AgentRuntime, RunContext
from roost.agents.spec import AgentSpec
from roost.chat import ChatService
from roost.engine import Engine, EngineConfig
from roost.graph import MemoryCheckpointer
from roost.llm.base import NO_SETTINGS, RequestContext
from roost.llm.messages import Message, ModelSettings, ResponseDone, StreamEvent, ToolDefinition
from roost.llm.providers.local import LocalModel
from roost.tools.executor import ToolCall, ToolResult

WORDS = [
    "the",
    "river",
    "carries",
    "silt",
    "from",
    "the",
    "mountains",
    "to",
    "the",
    "delta",
    "where",
    "birds",
    "rest",
]


class ForcedLoop:
    """The local model, made to call the tool on every turn but the last, timing each call."""

    def __init__(self, model: LocalModel, iterations: int, reuse: bool) -> None:
        self.model = model
        self.iterations = iterations
        self.reuse = reuse
        self.turns: list[dict[str, Any]] = []

    async def request_stream(
        self,
        model: str,
        messages: Sequence[Message],
        settings: ModelSettings = NO_SETTINGS,
        tools: Sequence[ToolDefinition] = (),
        *,
        context: RequestContext,
    ) -> AsyncIterator[StreamEvent]:
        # "auto" on the last turn, not "none": the template would then leave the tools out
        # of the prompt, changing its first tokens and defeating any cache.
        last = len(self.turns) + 1 >= self.iterations
        settings = replace(settings, tool_choice="auto" if last else "required")
        if not self.reuse:
            context = replace(context, cache_identity=None)
        started = time.perf_counter()
        async for event in self.model.request_stream(messages, settings, tools, context):
            if isinstance(event, ResponseDone):
                usage = event.response.usage
                self.turns.append(
                    {
                        "seconds": time.perf_counter() - started,
                        "prompt_tokens": usage.input_tokens,
                        "cached_tokens": usage.cached_input_tokens,
                        "prefilled_tokens": usage.input_tokens - usage.cached_input_tokens,
                        "output_tokens": usage.output_tokens,
                    }
                )
            yield event


class Notes:
    """A tool returning a fixed-size passage, so the transcript grows by the same amount."""

    def __init__(self, words: int) -> None:
        self.words = words

    async def definitions(self, run: RunContext, patterns: Sequence[str]) -> list[ToolDefinition]:
        schema = {"type": "object", "properties": {"topic": {"type": "string"}},
                  "required": ["topic"]}  # fmt: skip
        return [ToolDefinition("read_notes", "Read the next page of notes on a topic.", schema)]

    async def execute_many(
        self, run: RunContext, patterns: Sequence[str], calls: Sequence[ToolCall]
    ) -> list[ToolResult]:
        text = " ".join(WORDS[i % len(WORDS)] for i in range(self.words))
        return [ToolResult("ok", output=text, call_id=c.call_id) for c in calls]

    async def resume(
        self, run: RunContext, patterns: Sequence[str], approval_id: str, call_id: str | None
    ) -> ToolResult:
        raise NotImplementedError


async def run_once(
    engine: Engine, iterations: int, words: int, reuse: bool
) -> list[dict[str, Any]]:
    service = ChatService(engine)

    async def get_service() -> ChatService:
        return service

    model = ForcedLoop(LocalModel(f"local:{engine.model_name}", get_service), iterations, reuse)
    spec = AgentSpec(
        name="reader", model=f"local:{engine.model_name}", tools=["read_notes"],
        instructions="Read the notes page by page, then summarise them.",
        max_iterations=iterations, max_tokens=24, temperature=0,
    )  # fmt: skip
    runtime = AgentRuntime(model, Notes(words))
    graph = ReactAgent(spec, runtime).builder().compile(checkpointer=MemoryCheckpointer())
    thread = f"bench-{'reuse' if reuse else 'cold'}-{time.time_ns()}"
    context = RunContext("bench", thread, "run", "reader", 1)
    await graph.ainvoke(run_input(context, "Summarise the notes on rivers."), thread_id=thread,
                        recursion_limit=4 * iterations + 10)  # fmt: skip
    return model.turns


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--tool-words", type=int, default=60)
    parser.add_argument("--home", type=Path, default=Path("~/.roost"))
    args = parser.parse_args()
    results: dict[str, Any] = {"iterations": args.iterations, "tool_words": args.tool_words}
    for reuse in (True, False):
        engine = Engine(EngineConfig(home=args.home, dtype="float32", kv_cache_gb=0.5,
                                     enable_prefix_cache=reuse))  # fmt: skip
        try:
            asyncio.run(run_once(engine, 2, 8, reuse))  # warm-up: kernels, allocator
            turns = asyncio.run(run_once(engine, args.iterations, args.tool_words, reuse))
        finally:
            engine.close()
        results["reuse" if reuse else "no_reuse"] = turns
    print(f"{'iter':>4} {'prompt':>7} | {'reuse: prefilled':>16} {'ms':>7} |"
          f" {'no reuse: prefilled':>19} {'ms':>7}")  # fmt: skip
    for i, (hot, cold) in enumerate(zip(results["reuse"], results["no_reuse"], strict=False)):
        print(f"{i + 1:>4} {hot['prompt_tokens']:>7} | {hot['prefilled_tokens']:>16}"
              f" {hot['seconds'] * 1000:>7.0f} | {cold['prefilled_tokens']:>19}"
              f" {cold['seconds'] * 1000:>7.0f}")  # fmt: skip
    for name in ("reuse", "no_reuse"):
        turns = results[name]
        total = sum(t["prefilled_tokens"] for t in turns)
        later = [t["seconds"] for t in turns[1:]]
        spread = (max(later) - min(later)) / (sum(later) / len(later)) if later else 0.0
        results[f"{name}_total_prefilled"] = total
        results[f"{name}_time_spread"] = spread
        print(f"{name}: total prefilled tokens {total}, iterations 2..n time spread"
              f" {spread * 100:.0f}% of the mean")  # fmt: skip
    out = Path(__file__).parent / "results" / "agent_loop.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
