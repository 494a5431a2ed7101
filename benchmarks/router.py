"""Overhead of Roost's LLM router + response-cache lookup over a direct SDK call.

A mock OpenAI-compatible upstream runs in a separate process on loopback. The same
chat requests go two ways, interleaved round by round so drift hits both alike:
- direct: the official ``openai`` SDK, ``chat.completions.create``;
- routed: ``LLMService.request`` on a model group whose one deployment is that same
  upstream through Roost's ``openai`` provider, with the exact-match response cache on
  (every prompt is new, so each call pays the lookup and the store, never a hit).
At 1 and 100 concurrent callers it reports p50/p99 latency of each path, their
difference, and "Roost's own" time: each routed request's latency minus the time it
spent inside the SDK call, which is the added latency without the run-to-run noise of
comparing two separate samples. A second table measures the same machinery in process
against a zero-latency scripted model, which isolates Roost's own cost from HTTP noise.
A third table puts a whole Roost server in between (gateway mode, its own process, a
model group on the same upstream): authentication, request parsing, the router, the
usage record in SQLite and the response encoding, against the same direct SDK call.
Prints tables, writes JSON to benchmarks/results/router.json.
Run: ``python benchmarks/router.py`` (``--requests N`` per level and path).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import openai
from fastapi import FastAPI, Request
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from roost.config import LLMProviderSettings
from roost.llm.base import RequestContext
from roost.llm.cache import MemoryCacheStore, ResponseCache
from roost.llm.messages import Message, ModelSettings
from roost.llm.providers import ProviderRegistry
from roost.llm.router import Router
from roost.llm.service import LLMService
from roost.llm.testing import FunctionModel

RESULTS = Path(__file__).resolve().parent / "results"
GATEWAY_KEY = "bench-gateway-key-0123456789abcdef"
LEVELS = (1, 100)
SETTINGS = ModelSettings(max_tokens=16)


def upstream_app() -> Any:
    """A fixed-answer Chat Completions endpoint (what the subprocess serves)."""
    app = FastAPI()
    answer = {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 0,
        "model": "bench",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": 12, "completion_tokens": 1, "total_tokens": 13},
    }

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> dict[str, Any]:
        await request.body()
        return answer

    return app


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_upstream() -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    return _start([sys.executable, __file__, "--serve-upstream", str(port)], port), (
        f"http://127.0.0.1:{port}/v1"
    )


def start_gateway(upstream_url: str, home: Path) -> tuple[subprocess.Popen[bytes], str]:
    """A Roost server with the local engine off and group "chat" on the mock upstream."""
    config = home / "roost.toml"
    config.write_text(
        f"""
[engine]
enabled = false

[llm.providers.mock]
kind = "openai"
base_url = "{upstream_url}"
api_key = "bench"

[llm.groups.chat]
deployments = ["mock:bench"]
"""
    )
    port = free_port()
    env = {**os.environ, "ROOST_HOME": str(home), "ROOST_API_KEY": GATEWAY_KEY}
    command = [sys.executable, __file__, "--serve-gateway", str(port), "--config", str(config)]
    return _start(command, port, env), f"http://127.0.0.1:{port}/v1"


def _start(
    command: list[str], port: int, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return process
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"{command[2]} did not start")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def run_level(
    call: Callable[[int], Awaitable[object]], concurrency: int, num_requests: int, offset: int
) -> list[float]:
    """Latency (ms) of each of ``num_requests`` calls made by ``concurrency`` workers."""
    latencies: list[float] = []
    queue = iter(range(offset, offset + num_requests))

    async def worker() -> None:
        for i in queue:
            started = time.perf_counter()
            await call(i)
            latencies.append((time.perf_counter() - started) * 1000)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies


def summarize(direct: list[float], routed: list[float]) -> dict[str, float]:
    d50, d99 = percentile(direct, 0.5), percentile(direct, 0.99)
    r50, r99 = percentile(routed, 0.5), percentile(routed, 0.99)
    return {
        "direct_p50_ms": round(d50, 3),
        "direct_p99_ms": round(d99, 3),
        "routed_p50_ms": round(r50, 3),
        "routed_p99_ms": round(r99, 3),
        "added_p50_ms": round(r50 - d50, 3),
        "added_p99_ms": round(r99 - d99, 3),
        "requests": len(direct),
    }


async def compare(
    direct: Callable[[int], Awaitable[object]],
    routed: Callable[[int], Awaitable[object]],
    num_requests: int,
    rounds: int = 4,
) -> dict[str, dict[str, float]]:
    results: dict[str, dict[str, float]] = {}
    offset = 0
    for level in LEVELS:
        await run_level(direct, level, min(level * 2, 50), 10**8)  # warm connections
        await run_level(routed, level, min(level * 2, 50), 2 * 10**8)
        per_round = max(level, num_requests // rounds)
        direct_ms: list[float] = []
        routed_ms: list[float] = []
        for _ in range(rounds):
            direct_ms += await run_level(direct, level, per_round, offset)
            offset += per_round
            routed_ms += await run_level(routed, level, per_round, offset)
            offset += per_round
        results[str(level)] = summarize(direct_ms, routed_ms)
    return results


class TimedModel:
    """Wraps the provider's model and notes how long each call spent inside it (the SDK
    call), per task, so the rest of the routed latency is Roost's own time."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.inside_ms: dict[asyncio.Task[Any] | None, float] = {}

    @property
    def model_id(self) -> str:
        return str(self.inner.model_id)

    async def request(self, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return await self.inner.request(*args, **kwargs)
        finally:
            self.inside_ms[asyncio.current_task()] = (time.perf_counter() - started) * 1000

    def request_stream(self, *args: Any, **kwargs: Any) -> Any:
        return self.inner.request_stream(*args, **kwargs)


async def own_time(
    service: LLMService, timed: TimedModel, concurrency: int, num_requests: int, offset: int
) -> list[float]:
    """Per request: routed latency minus the time spent inside the SDK call (ms)."""
    context = RequestContext("bench-tenant")
    own: list[float] = []
    queue = iter(range(offset, offset + num_requests))

    async def worker() -> None:
        for i in queue:
            started = time.perf_counter()
            await service.request("chat", prompt(i), SETTINGS, context=context)
            total = (time.perf_counter() - started) * 1000
            own.append(total - timed.inside_ms.pop(asyncio.current_task()))

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return own


def prompt(i: int) -> list[Message]:
    return [Message.user(f"benchmark prompt number {i}: say ok")]


async def http_benchmark(base_url: str, num_requests: int) -> dict[str, dict[str, float]]:
    client = openai.AsyncOpenAI(api_key="bench", base_url=base_url, max_retries=0)
    registry = ProviderRegistry(
        {"mock": LLMProviderSettings(kind="openai", base_url=base_url, api_key="bench")},  # type: ignore[arg-type]
        env={},
    )
    timed = TimedModel(registry.model("mock:bench"))
    registry.register(timed)
    router = Router(registry)
    router.add_group("chat", [("mock:bench", 1.0)])
    service = LLMService(router, cache=ResponseCache(MemoryCacheStore(100_000)))
    context = RequestContext("bench-tenant")

    async def direct(i: int) -> object:
        return await client.chat.completions.create(
            model="bench",
            messages=[{"role": "user", "content": f"benchmark prompt number {i}: say ok"}],
            max_tokens=16,
        )

    async def routed(i: int) -> object:
        return await service.request("chat", prompt(i), SETTINGS, context=context)

    try:
        results = await compare(direct, routed, num_requests)
        for level in LEVELS:
            own = await own_time(service, timed, level, num_requests, 10**9 + level * 10**6)
            results[str(level)]["own_p50_ms"] = round(percentile(own, 0.5), 3)
            results[str(level)]["own_p99_ms"] = round(percentile(own, 0.99), 3)
        return results
    finally:
        await client.close()
        await service.aclose()


async def gateway_benchmark(
    upstream_url: str, gateway_url: str, num_requests: int
) -> dict[str, dict[str, float]]:
    direct_client = openai.AsyncOpenAI(api_key="bench", base_url=upstream_url, max_retries=0)
    gateway_client = openai.AsyncOpenAI(api_key=GATEWAY_KEY, base_url=gateway_url, max_retries=0)

    def call(client: openai.AsyncOpenAI, model: str) -> Callable[[int], Awaitable[object]]:
        async def one(i: int) -> object:
            return await client.chat.completions.create(
                model=model,
                messages=[{"role": "user", "content": f"benchmark prompt number {i}: say ok"}],
                max_tokens=16,
            )

        return one

    try:
        return await compare(
            call(direct_client, "bench"), call(gateway_client, "chat"), num_requests
        )
    finally:
        await direct_client.close()
        await gateway_client.close()


async def in_process_benchmark(num_requests: int) -> dict[str, dict[str, float]]:
    model = FunctionModel(lambda info: "ok", "bench:zero")
    registry = ProviderRegistry(env={})
    registry.register(model)
    router = Router(registry)
    router.add_group("chat", [("bench:zero", 1.0)])
    service = LLMService(router, cache=ResponseCache(MemoryCacheStore(1_000_000)))
    context = RequestContext("bench-tenant")

    async def direct(i: int) -> object:
        return await model.request(prompt(i), SETTINGS)

    async def routed(i: int) -> object:
        return await service.request("chat", prompt(i), SETTINGS, context=context)

    result = await compare(direct, routed, num_requests * 5)
    model.calls.clear()
    return result


def own(result: dict[str, float], key: str) -> str:
    return f"{result[key]:.3f}" if key in result else "-"


def table(title: str, results: dict[str, dict[str, float]]) -> Table:
    out = Table(
        "concurrent", "direct p50", "routed p50", "added p50", "direct p99", "routed p99",
        "added p99", "Roost's own p50", "Roost's own p99", "requests", title=title,
    )  # fmt: skip
    for level, r in results.items():
        out.add_row(
            level, f"{r['direct_p50_ms']:.3f}", f"{r['routed_p50_ms']:.3f}",
            f"{r['added_p50_ms']:+.3f}", f"{r['direct_p99_ms']:.3f}", f"{r['routed_p99_ms']:.3f}",
            f"{r['added_p99_ms']:+.3f}", own(r, "own_p50_ms"), own(r, "own_p99_ms"), str(int(r["requests"])),
        )  # fmt: skip
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=800, help="per level and path")
    parser.add_argument("--serve-upstream", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--serve-gateway", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--config", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_gateway:
        import uvicorn

        from roost.config import load_settings
        from roost.server.app import create_app

        app = create_app(load_settings(args.config))
        uvicorn.run(
            app, host="127.0.0.1", port=args.serve_gateway, log_level="error", log_config=None,
            timeout_keep_alive=300,
        )  # fmt: skip
        return
    if args.serve_upstream:
        import uvicorn

        uvicorn.run(
            upstream_app(), host="127.0.0.1", port=args.serve_upstream, log_level="error",
            timeout_keep_alive=300,
        )  # fmt: skip
        return
    process, base_url = start_upstream()
    try:
        over_http = asyncio.run(http_benchmark(base_url, args.requests))
        with tempfile.TemporaryDirectory() as home:
            gateway, gateway_url = start_gateway(base_url, Path(home))
            try:
                through_gateway = asyncio.run(
                    gateway_benchmark(base_url, gateway_url, args.requests)
                )
            finally:
                gateway.terminate()
                gateway.wait(timeout=30)
    finally:
        process.terminate()
        process.wait(timeout=10)
    in_process = asyncio.run(in_process_benchmark(args.requests))
    console = Console()
    console.print(
        table("router + cache vs direct SDK call (mock upstream over HTTP), ms", over_http)
    )
    console.print(
        table(
            "router + cache vs direct model call (in process, zero-latency model), ms", in_process
        )
    )
    console.print(
        table(
            "Roost gateway server (HTTP in, auth, router, usage record, HTTP out) vs direct"
            " SDK call, ms",
            through_gateway,
        )
    )
    RESULTS.mkdir(exist_ok=True)
    report = {
        "benchmark": "router",
        "cpu_count": os.cpu_count(),
        "python": sys.version.split()[0],
        "http_mock_upstream": over_http,
        "in_process": in_process,
        "gateway_http": through_gateway,
        "notes": (
            "added = routed - direct at the same percentile; own = routed latency minus time"
            " inside the SDK call, per request; exact cache on, every prompt new"
        ),
    }
    (RESULTS / "router.json").write_text(json.dumps(report, indent=2) + "\n")
    console.print(f"wrote {RESULTS / 'router.json'}")


if __name__ == "__main__":
    main()
