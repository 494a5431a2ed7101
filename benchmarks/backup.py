"""Backup and restore of a large home (issue 19): time and archive size of `backup create`,
`verify` and `restore`, and chat latency of a running server while a backup runs.

    python benchmarks/backup.py [--runs 10000] [--memories 100000] [--kv-gb 1.0] [--chats 30]

The home is built directly in its stores: runs with 5 events each in the relational
store, memories (384-dimension vectors, as MiniLM's) in the embedded vector store, and
KV cold files of random bytes (incompressible, like quantized K/V). Then `roost serve`
starts on it with the bundled model, answers `--chats` chat requests alone, and again
while `roost backup create --with-kv` runs beside it. Writes
benchmarks/results/backup.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from roost.backup.restore import restore_backup
from roost.backup.verify import verify_archive
from roost.config import Settings, load_settings
from roost.llm.embeddings import HashingEmbedder
from roost.memory.sqlite_store import SqliteVectorStore
from roost.platform import Platform
from roost.platform.schema import migrate_all

API_KEY = "bench-backup-key-0123456789"
MODEL_DIGEST = "bench-model"


def build_home(home: Path, runs: int, memories: int, kv_gb: float) -> Settings:
    settings = load_settings(env={"ROOST_HOME": str(home), "ROOST_MEMORY__EMBEDDER": "hashing-384"})

    async def relational() -> None:
        platform_ = await Platform.open(settings)
        try:
            await migrate_all(platform_.database)
            tenant = (await platform_.tenants.find_by_name("default")).id  # type: ignore[union-attr]
            now = time.time_ns() // 1_000_000
            for start in range(0, runs, 1000):
                batch = range(start, min(start + 1000, runs))
                async with platform_.database.transaction() as conn:
                    from sqlalchemy import text

                    await conn.execute(
                        text(
                            "INSERT INTO agent_runs (id, tenant_id, thread_id, agent, agent_version,"
                            " status, input, output, usage, created_at, updated_at) VALUES"
                            " (:i, :t, :th, 'helper', 1, 'succeeded', :in, :out, '{}', :c, :c)"
                        ),
                        [{"i": f"run_{n}", "t": tenant, "th": f"thread_{n % 500}",
                          "in": json.dumps({"input": f"question {n} " * 8}),
                          "out": json.dumps({"answer": f"answer {n} " * 16}), "c": now + n}
                         for n in batch],
                    )  # fmt: skip
                    await conn.execute(
                        text(
                            "INSERT INTO run_events (tenant_id, run_id, event, created_at)"
                            " VALUES (:t, :r, :e, :c)"
                        ),
                        [{"t": tenant, "r": f"run_{n}", "c": now + n,
                          "e": json.dumps({"type": "token", "text": f"token {k} of run {n}"})}
                         for n in batch for k in range(5)],
                    )  # fmt: skip
        finally:
            await platform_.close()

    asyncio.run(relational())
    embedder = HashingEmbedder(384)
    store = SqliteVectorStore(
        home / "memory.db", embedder_id=embedder.id, dimension=384, cache_vectors=0
    )
    try:
        now = time.time_ns() // 1_000_000
        for start in range(0, memories, 5000):
            texts = [f"memory {n}: the user said something worth keeping, number {n}"
                     for n in range(start, min(start + 5000, memories))]  # fmt: skip
            vectors = embedder.embed_sync(texts)
            store.insert_exported(
                [("default", f"mem_{start + i}", "agent:helper", t, "{}", embedder.id, now, now, v)
                 for i, (t, v) in enumerate(zip(texts, vectors, strict=True))]
            )  # fmt: skip
    finally:
        store.close_now()
    kv = home / "kv" / MODEL_DIGEST
    kv.mkdir(parents=True, exist_ok=True)
    file_bytes = 16 * 2**20
    for n in range(int(kv_gb * 2**30) // file_bytes):
        (kv / f"{n:032x}.safetensors").write_bytes(os.urandom(file_bytes))
    return settings


def chat_latencies(url: str, count: int, stop: threading.Event | None = None) -> list[float]:
    """Latency of chat requests, ``count`` of them (or until ``stop`` when given)."""
    latencies: list[float] = []
    with httpx.Client(
        base_url=url, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=120
    ) as client:
        n = 0
        while (stop is None and n < count) or (stop is not None and not stop.is_set()):
            n += 1
            started = time.perf_counter()
            reply = client.post(
                "/v1/chat/completions",
                json={"model": "smollm2-135m-instruct", "max_tokens": 16, "temperature": 0,
                      "messages": [{"role": "user", "content": f"Name a colour ({n})."}]},
            )  # fmt: skip
            reply.raise_for_status()
            latencies.append(time.perf_counter() - started)
    return latencies


def p95(values: list[float]) -> float:
    return float(np.percentile(values, 95)) if values else float("nan")


def cli_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROOST_")}
    return env | {"ROOST_HOME": str(home), "ROOST_MEMORY__EMBEDDER": "hashing-384",
                  "ROOST_LOGGING__LEVEL": "warning"}  # fmt: skip


def serve(home: Path, port: int) -> subprocess.Popen[bytes]:
    env = cli_env(home) | {"ROOST_API_KEY": API_KEY, "ROOST_SERVER__PORT": str(port)}
    process = subprocess.Popen(
        [sys.executable, "-m", "roost.cli.main", "serve"], env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health/ready", timeout=2).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        time.sleep(0.5)  # polling a starting server, not synchronising a test
    process.kill()
    raise RuntimeError("the server did not become ready")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--memories", type=int, default=100_000)
    parser.add_argument("--kv-gb", type=float, default=1.0)
    parser.add_argument("--chats", type=int, default=30)
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="h-ops-bench-backup-"))
    results: dict[str, Any] = {
        "args": vars(args),
        "cpu": platform.processor() or platform.machine(),
    }
    try:
        home = root / "home"
        started = time.perf_counter()
        build_home(home, args.runs, args.memories, args.kv_gb)
        results["build_s"] = round(time.perf_counter() - started, 1)
        results["home_bytes"] = sum(p.stat().st_size for p in home.rglob("*") if p.is_file())

        server = serve(home, args.port) if args.chats else None
        try:
            if server is not None:
                url = f"http://127.0.0.1:{args.port}"
                chat_latencies(url, 3)  # warm-up
                alone = chat_latencies(url, args.chats)
                stop = threading.Event()
                during: list[float] = []
                worker = threading.Thread(
                    target=lambda: during.extend(chat_latencies(url, 0, stop))
                )
                worker.start()
            # As an operator would: `roost backup create` beside the running server.
            started = time.perf_counter()
            made = subprocess.run(
                [sys.executable, "-m", "roost.cli.main", "backup", "create", "--with-kv", "--json"],
                env=cli_env(home), capture_output=True, text=True, check=True,
            )  # fmt: skip
            results["backup_cli_wall_s"] = round(time.perf_counter() - started, 1)
            created = json.loads(made.stdout)
            if server is not None:
                stop.set()
                worker.join()
                results["chat_p95_alone_s"] = round(p95(alone), 3)
                results["chat_p95_during_backup_s"] = round(p95(during), 3)
                results["chat_median_alone_s"] = round(statistics.median(alone), 3)
                results["chat_median_during_backup_s"] = round(statistics.median(during), 3)
                results["chats_during_backup"] = len(during)
        finally:
            if server is not None:
                server.terminate()
                server.wait(timeout=60)
        results["backup_s"] = created["seconds"]
        results["archive_bytes"] = created["bytes"]
        archive = Path(created["path"])
        started = time.perf_counter()
        verify_archive(archive, None)
        results["verify_s"] = round(time.perf_counter() - started, 1)
        target = load_settings(env={"ROOST_HOME": str(root / "restored")})
        started = time.perf_counter()
        restore_backup(target, archive, passphrase=None)
        results["restore_s"] = round(time.perf_counter() - started, 1)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    out = Path(__file__).parent / "results" / "backup.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
