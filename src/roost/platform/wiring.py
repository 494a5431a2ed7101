"""How the kernel builds the services that need more than their own ``open``: the LLM
service's local models and upkeep, the agents runtime and its run service, plugins."""

from __future__ import annotations

import asyncio
import importlib
import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from roost.config import Settings
from roost.errors import ConfigError, NotFound, Overloaded
from roost.llm.base import Model
from roost.observe.logging import get_logger

if TYPE_CHECKING:
    from roost.agents.catalog import OfferFor
    from roost.agents.runtime import AgentRuntime
    from roost.llm.cost import PriceTable
    from roost.llm.service import LLMService
    from roost.memory.service import MemoryServices
    from roost.platform.core import Platform
    from roost.platform.inference import InferenceState
    from roost.platform.kernel import Roost
    from roost.security.content_guard import ContentGuard
    from roost.tools.builtin.semantic import KnowledgeSearch

log = get_logger("roost.platform")
# Reservations older than this belong to a process that died mid-call.
STALE_RESERVATION_MS = 3_600_000
UPKEEP_INTERVAL_S = 600.0


def local_models(inference: InferenceState) -> Callable[[str], Model]:
    """``local:<name>`` models served by this process's engine (loaded in the background)."""
    from roost.llm.providers.local import LocalModel

    async def chat_service() -> Any:
        if inference.is_disabled:
            raise Overloaded("the local engine is not part of this process")
        return await inference.ready_service()

    return lambda name: LocalModel(f"local:{name}", chat_service)


async def llm_upkeep(
    service: LLMService,
    probe_interval_s: float | None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> None:
    """Probe open circuits (when configured) and release stale budget reservations."""
    interval = min(probe_interval_s or UPKEEP_INTERVAL_S, UPKEEP_INTERVAL_S)
    since_release = 0.0
    while True:
        await sleep(interval)
        try:
            if probe_interval_s:
                for name in list(service.router.groups):
                    await service.router.probe(name)
            since_release += interval
            if service.budgets is not None and since_release >= UPKEEP_INTERVAL_S:
                since_release = 0.0
                await service.budgets.release_stale(STALE_RESERVATION_MS)
        except Exception:
            log.exception("llm upkeep failed; trying again next round")


def span_cost(prices: PriceTable) -> Callable[[str, str, int, int, int], int | None]:
    """The trace store's pricing of a model-call span, from the LLM layer's price table:
    by deployment id (``provider:model``), else by model name."""
    from roost.llm.messages import Usage

    def cost(provider: str, model: str, input_tokens: int, output: int, cached: int) -> int | None:
        price = prices.get(model if ":" in model else f"{provider}:{model}")
        return None if price is None else price.cost_nano(Usage(input_tokens, output, cached))

    return cost


def knowledge_search(memory: MemoryServices | None) -> KnowledgeSearch | None:
    """The knowledge base as the ``semantic_search`` tools call it (None without one)."""
    if memory is None or not hasattr(memory, "search_knowledge"):
        return None

    async def search(
        tenant_id: str, collection: str | None, query: str, k: int
    ) -> list[dict[str, Any]]:
        if collection is None:  # every collection of the tenant, best hits first
            names = [c.name for c in await memory.knowledge.list_collections(tenant_id)]
        else:
            names = [collection]
        hits = [hit for name in names
                for hit in await memory.search_knowledge(tenant_id, name, query, k=k)]  # fmt: skip
        hits = sorted(hits, key=lambda h: h.score, reverse=True)[:k]
        return [
            {"text": h.text, "uri": h.uri, "line_start": h.line_start, "line_end": h.line_end,
             "score": h.score}
            for h in hits
        ]  # fmt: skip

    return search


def spec_offer(kernel: Roost) -> OfferFor:
    """What a tenant's agent specs may name: the router's groups, registered models,
    configured providers, the local engine's model and the tenant's tools (MCP servers'
    tools by their prefix: they are listed only while connected)."""
    from roost.agents.spec_check import Offer

    async def offer_for(tenant_id: str) -> Offer:
        router = kernel.llm.router
        settings = kernel.settings
        local: set[str] = set()
        engine = kernel.inference.engine
        if engine is not None:
            local.add(str(getattr(engine, "model_name", "")))
        elif settings.engine.enabled:
            # Not loaded in this process (a CLI command, or still loading): what it loads.
            local.update({settings.engine.model, Path(settings.engine.model).stem})
        tools = await kernel.tools.registry.list_tools(tenant_id)
        return Offer(
            groups=router.served_names(),
            model_ids=router.registry.model_ids(),
            providers=list(router.registry.providers),
            local_models=sorted(local - {""}),
            tools=[tool.name for tool in tools],
            mcp_servers=[server.name for server in settings.tools.mcp_servers],
            guardrails=kernel.runs.runtime.guardrails.names(),
        )

    return offer_for


def webhook_secret(settings: Settings) -> bytes:
    """The configured secret, else one generated once and kept in the Roost home (so every
    process of a deployment on this host signs alike)."""
    if settings.agents.webhook_secret is not None:
        return settings.agents.webhook_secret.get_secret_value().encode()
    path = settings.home / "agent-webhook.key"
    if not path.exists():
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return path.read_text().strip().encode()


def runs_url(settings: Settings) -> str:
    """DBOS's system database: the deployment's PostgreSQL when it has one (every worker
    shares the queue), else a SQLite file beside the main one."""
    if settings.agents.runs_url:
        return settings.agents.runs_url
    if settings.database_url.startswith(("postgresql", "postgres")):
        return settings.database_url.replace("postgresql+asyncpg://", "postgresql://", 1)
    return f"sqlite:///{settings.home / 'agent-runs.db'}"


def checkpoints(settings: Settings) -> tuple[Path, str | None]:
    """Thread checkpoints: PostgreSQL with the deployment's database, else a SQLite file."""
    path = settings.agents.checkpoints_path or settings.home / "agent-threads.db"
    url = settings.database_url
    if settings.agents.checkpoints_path is None and url.startswith(("postgresql", "postgres")):
        return path, url.replace("postgresql+asyncpg://", "postgresql://", 1)
    return path, None


def load_plugins(kernel: Roost) -> None:
    """Call ``register(kernel)`` of every module in ``plugins``: custom models, toolsets
    and graphs, registered the same way in servers and workers."""
    for name in kernel.settings.plugins:
        module_name, _, attribute = name.partition(":")
        try:
            register = getattr(importlib.import_module(module_name), attribute or "register")
        except (ImportError, AttributeError) as exc:
            raise ConfigError([("plugins", f"cannot load {name!r}: {exc}")]) from exc
        register(kernel)
        log.info("plugin loaded", plugin=name)


def content_guard(platform: Platform, runtime: AgentRuntime, traces: Any) -> ContentGuard:
    """The PII and injection guard from ``[guardrails]``, wired where content flows: agent
    runs (their runtime), trace content (masked before it is stored) and, through
    ``app.state``, the chat endpoints."""
    from roost.security.content_guard import ContentGuard, register_guardrails

    async def tenant_name(tenant_id: str) -> str | None:
        try:
            return (await platform.tenants.get(tenant_id)).name
        except NotFound:
            return None

    guard = ContentGuard(platform.settings.guardrails, platform.audit, tenant_name=tenant_name)
    runtime.content_guard = guard
    register_guardrails(runtime.guardrails, guard)
    if traces is not None:
        traces.policies.mask = guard.mask_for_trace
    return guard
