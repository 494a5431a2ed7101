"""The trace store's cost as a client meets it (``benchmarks/observe.py --mode served``).

Two ``roost serve`` processes with default settings, started together on homes of their
own: one as shipped (trace store on), one with ``ROOST_TRACING__STORE=false``. Both load
``benchmarks/observe_plugin.py`` (a zero-latency scripted provider model behind the model
group ``fast``) and ``roost.llm.scripted_steps`` (an agent of one tool step: model call,
tool call, model call — three graph steps), so what is measured is Roost's own path.

The official ``openai`` SDK drives them over HTTP, one request at a time:

- gateway: ``chat.completions.create(model="fast")``;
- agent: ``POST /execute`` (a run on a new thread, through the durable queue, the ReAct
  graph, the tool executor and checkpoints, answered when settled).

Blocks of requests alternate between the servers (on, off, off, on, …) so both see the
same load on this shared machine. Wall time per request is taken at the client; server
CPU is each process's user+system time from ``/proc/<pid>/stat`` (every thread) over the
whole phase, after a trace query has flushed the on-server's writer queue, divided by its
requests — so the writer's batched inserts are part of the figure.

The default rate limit (1,200 requests/min per key, with a burst) stays on: more than
~1,100 requests per mode can meet it on a quiet machine (a 429 stops the benchmark).
``--served-control`` turns the store off on both servers: an A/A run, the noise floor.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import openai

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.process import ServerProcess, start_server  # noqa: E402

KEY = "bench-observe-served-key-0123456789ab"
AGENT = {"name": "stepper", "model": "scripted:steps", "tools": ["scripted_step"]}
SERVER_ENV: dict[str, str] = {}  # diagnostics only (--server-env); the figures use defaults


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def cpu_seconds(pid: int) -> float:
    """User + system time of every thread of the process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def server_env(home: Path, *, store: bool) -> dict[str, str]:
    env = {
        "ROOST_HOME": str(home),
        "ROOST_API_KEY": KEY,
        "ROOST_PLUGINS": '["benchmarks.observe_plugin", "roost.llm.scripted_steps"]',
        "SCRIPTED_STEPS": "1",
        "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}",  # this checkout's code
        **SERVER_ENV,
    }
    if not store:
        env["ROOST_TRACING__STORE"] = "false"
    return env


@contextmanager
def server_pair(root: Path, *, control: bool) -> Iterator[dict[str, ServerProcess]]:
    """Both servers, started at the same time; stopped on the way out. ``control`` turns
    the store off on both (an A/A run: the noise floor between two identical servers)."""
    with ThreadPoolExecutor(2) as pool:
        futures = {
            mode: pool.submit(
                start_server,
                server_env(root / mode, store=mode == "on" and not control),
                ready_marker="model loaded",  # the engine's load is not in the figures
                timeout_s=600,
            )
            for mode in ("on", "off")
        }
        servers = {mode: future.result() for mode, future in futures.items()}
    try:
        yield servers
    finally:
        for server in servers.values():
            server.stop()


class Client:
    """The official SDK pointed at one server: ``/v1`` for the gateway, the root for
    ``/execute``."""

    def __init__(self, server: ServerProcess, *, store: bool) -> None:
        self.store = store
        self.pid = server.process.pid
        self.url = server.url
        self.v1 = openai.OpenAI(base_url=f"{server.url}/v1", api_key=KEY, max_retries=0)
        self.root = openai.OpenAI(base_url=server.url, api_key=KEY, max_retries=0)

    def gateway(self) -> None:
        reply = self.v1.chat.completions.create(
            model="fast", messages=[{"role": "user", "content": "hi"}], max_tokens=8
        )
        assert reply.choices[0].message.content == "ok", reply

    def agent(self) -> None:
        run = self.root.post(
            "/execute", cast_to=httpx.Response, body={"agent": "stepper", "input": "go"}
        ).json()
        assert run["status"] == "succeeded", run

    def flush(self) -> None:
        """A trace query flushes the server's writer queue first (with the store off the
        route answers 503 and there is nothing to flush)."""
        if self.store:
            self.v1.get("/traces", cast_to=httpx.Response, options={"params": {"limit": 1}})


def alternate(
    clients: dict[str, Client], call: Callable[[Client], None], per_mode: int, block: int
) -> dict[str, Any]:
    samples: dict[str, list[float]] = {"on": [], "off": []}
    for client in clients.values():  # warm up: imports, caches, first-time paths
        for _ in range(max(5, block // 2)):
            call(client)
        client.flush()
    cpu_started = {mode: cpu_seconds(c.pid) for mode, c in clients.items()}
    for i in range(2 * (per_mode // block)):
        mode = ("on", "off", "off", "on")[i % 4]
        client = clients[mode]
        for _ in range(block):
            started = time.perf_counter()
            call(client)
            samples[mode].append((time.perf_counter() - started) * 1000)
    for client in clients.values():
        client.flush()
    cpu = {
        mode: 1000 * (cpu_seconds(c.pid) - cpu_started[mode]) / len(samples[mode])
        for mode, c in clients.items()
    }
    on, off = samples["on"], samples["off"]
    return {
        "requests_per_mode": len(on),
        "p50_ms": {"on": pct(on, 0.5), "off": pct(off, 0.5)},
        "p99_ms": {"on": pct(on, 0.99), "off": pct(off, 0.99)},
        "overhead_p50_ms": pct(on, 0.5) - pct(off, 0.5),
        "overhead_p50_pct": 100 * (pct(on, 0.5) - pct(off, 0.5)) / pct(off, 0.5),
        "server_cpu_ms_per_request": cpu,
        "overhead_cpu_ms": cpu["on"] - cpu["off"],
        "overhead_cpu_pct": 100 * (cpu["on"] - cpu["off"]) / cpu["off"],
    }


def machine() -> dict[str, Any]:
    model = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    return {"cpu": model, "cpus": os.cpu_count(), "load_average": os.getloadavg()}


def served_overhead(requests: int, runs: int, *, control: bool = False) -> dict[str, Any]:
    load_before = os.getloadavg()
    with (
        tempfile.TemporaryDirectory(prefix="h-trace-observe-served-") as tmp,
        server_pair(Path(tmp), control=control) as servers,
    ):
        clients = {
            mode: Client(server, store=mode == "on" and not control)
            for mode, server in servers.items()
        }
        for client in clients.values():
            client.root.post("/v1/agents", cast_to=httpx.Response, body={"spec": AGENT})
        gateway = alternate(clients, Client.gateway, requests, block=100)
        agent = alternate(clients, Client.agent, runs, block=20)
    return {
        "gateway": gateway,
        "agent": {**agent, "steps_per_run": 3},
        "machine": {**machine(), "load_average_before": load_before},
        "control": control,
    }
