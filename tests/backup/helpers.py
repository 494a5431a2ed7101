"""A home filled through the real server app: what a backup must bring back."""

from __future__ import annotations

import operator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, TypedDict

import httpx
import torch
from fastapi import FastAPI

from roost.config import Settings
from roost.engine.session_cache import CacheIdentity
from roost.graph import END, START, SqliteCheckpointer, StateGraph
from roost.graph.checkpoint.postgres import PostgresCheckpointer
from roost.kvcache.cold_store import ColdEntry, ColdStore
from roost.kvcache.quantize import quantize
from roost.llm.testing import FunctionModel
from roost.platform import wiring

# The model-free settings every test of this package runs the app with.
APP_ENV = {"ROOST_MEMORY__EMBEDDER": "hashing", "ROOST_MEMORY__CONSOLIDATION_INTERVAL_S": "0"}
MODEL_DIGEST, TOKENIZER_DIGEST = "model-digest-backup", "tokenizer-digest-backup"


class Counter(TypedDict, total=False):
    count: Annotated[int, operator.add]


def counter_graph(settings: Settings, tenant_id: str) -> Any:
    """A one-node graph checkpointing where the home keeps thread checkpoints."""
    path, url = wiring.checkpoints(settings)
    checkpointer: Any = (
        SqliteCheckpointer(path, tenant_id=tenant_id)
        if url is None
        else PostgresCheckpointer(url, tenant_id=tenant_id)
    )
    g = StateGraph(Counter)
    g.add_node("count", lambda state: {"count": 1})
    g.add_edge(START, "count")
    g.add_edge("count", END)
    return g.compile(checkpointer=checkpointer)


@dataclass
class Filled:
    """Ids and values written before the backup, to look for after the restore."""

    tenant_id: str = ""
    key: str = ""
    thread_id: str = ""
    run_id: str = ""
    memory_ids: list[str] = field(default_factory=list)
    kv_tokens: list[int] = field(default_factory=list)


def kv_store(home: Path) -> ColdStore:
    return ColdStore(
        home / "kv" / MODEL_DIGEST, model_digest=MODEL_DIGEST, tokenizer_digest=TOKENIZER_DIGEST
    )


async def fill(app: FastAPI, client: httpx.AsyncClient, home: Path) -> Filled:
    filled = Filled()
    platform = app.state.platform
    tenant = await platform.tenants.create("acme")
    _key, filled.key = await platform.api_keys.create(tenant.id, "ci")
    filled.tenant_id = tenant.id
    acme = {"Authorization": f"Bearer {filled.key}"}

    app.state.llm.router.registry.register(FunctionModel(lambda info: "ok", "function:agent"))
    created = await client.post(
        "/v1/agents", json={"spec": {"name": "helper", "model": "function:agent"}}, headers=acme
    )
    assert created.status_code == 201, created.text

    settings = app.state.platform.settings
    app.state.agents.graphs["counter"] = counter_graph(settings, tenant.id)
    thread = await client.post("/v1/threads", json={"metadata": {"user": "ada"}}, headers=acme)
    filled.thread_id = thread.json()["id"]
    run = await client.post(
        f"/v1/threads/{filled.thread_id}/runs",
        json={"graph": "counter", "input": {"count": 41}},
        headers=acme,
    )
    assert run.json()["status"] == "succeeded", run.text
    filled.run_id = run.json()["id"]
    app.state.agents.graphs.pop("counter").checkpointer.close()

    for text in ("Ada prefers tea", "Ada lives in Lyon"):
        memory = await client.post(
            "/v1/memory/agents/helper/memories", json={"text": text}, headers=acme
        )
        assert memory.status_code == 201, memory.text
        filled.memory_ids.append(memory.json()["id"])
    message = await client.post(
        "/v1/memory/threads/t-1/messages", json={"role": "user", "content": "hello"}, headers=acme
    )
    assert message.status_code == 201, message.text

    collection = await client.post("/v1/knowledge/collections", json={"name": "docs"}, headers=acme)
    assert collection.status_code == 201, collection.text
    document = await client.post(
        "/v1/knowledge/collections/docs/documents",
        json={"uri": "doc://roost", "text": "Roost keeps KV caches of agents across restarts."},
        headers=acme,
    )
    assert document.status_code == 200, document.text

    filled.kv_tokens = save_kv(home, tenant.id, "agent-7")
    return filled


def save_kv(home: Path, tenant_id: str, session_id: str) -> list[int]:
    """A session's KV cache in the cold tier, as the engine leaves it; returns its tokens."""
    tokens = list(range(200, 264))
    kv = torch.randn(2, len(tokens), 2, 2, 16, generator=torch.Generator().manual_seed(7))
    kv_store(home).save(
        ColdEntry(CacheIdentity(tenant_id, session_id), tokens, quantize(kv, "int8"),
                  MODEL_DIGEST, TOKENIZER_DIGEST, created_ms=1, last_used_ms=2)
    )  # fmt: skip
    return tokens


async def check_restored(
    app: FastAPI, client: httpx.AsyncClient, home: Path, filled: Filled
) -> None:
    """Everything :func:`fill` wrote answers again, through the API and the stores."""
    acme = {"Authorization": f"Bearer {filled.key}"}  # the key itself came back
    tenants = [t.name for t in await app.state.platform.tenants.list()]
    assert "acme" in tenants
    agent = await client.get("/v1/agents/helper", headers=acme)
    assert agent.status_code == 200, agent.text

    settings = app.state.platform.settings
    app.state.agents.graphs["counter"] = counter_graph(settings, filled.tenant_id)
    run = await client.get(f"/v1/runs/{filled.run_id}", headers=acme)
    assert run.status_code == 200 and run.json()["status"] == "succeeded", run.text
    state = await client.get(f"/v1/threads/{filled.thread_id}", headers=acme)
    assert state.status_code == 200, state.text
    assert state.json()["values"] == {"count": 42}  # read from the restored checkpoints
    app.state.agents.graphs.pop("counter").checkpointer.close()

    memories = await client.get("/v1/memory/agents/helper/memories", headers=acme)
    assert {m["id"] for m in memories.json()["data"]} >= set(filled.memory_ids)
    messages = await client.get("/v1/memory/threads/t-1/messages", headers=acme)
    assert [m["content"] for m in messages.json()["data"]] == ["hello"]
    hits = await client.post(
        "/v1/knowledge/collections/docs/search", json={"query": "KV caches"}, headers=acme
    )
    assert hits.status_code == 200, hits.text
    assert hits.json()["data"][0]["uri"] == "doc://roost"

    loaded = kv_store(home).load(CacheIdentity(filled.tenant_id, "agent-7"))
    assert loaded is not None and loaded.token_ids == filled.kv_tokens
