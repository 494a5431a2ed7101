"""The platform kernel: every service of a Roost deployment, opened once from settings.

The HTTP server, the CLI and ``roost worker`` all open a :class:`Roost`; they differ only
in which loops they run on top (HTTP, run execution, upkeep). Services are opened in
dependency order and closed in reverse.
"""

from __future__ import annotations

import asyncio
import contextlib
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from roost.config import Settings
from roost.observe.logging import get_logger
from roost.platform.core import Platform

if TYPE_CHECKING:
    from roost.agents.catalog import AgentCatalog
    from roost.agents.service import AgentRunService
    from roost.evals.service import EvalServices
    from roost.limits.service import Limiter
    from roost.llm.service import LLMService
    from roost.memory.service import MemoryServices
    from roost.observe.trace_service import TraceService
    from roost.platform.inference import InferenceState
    from roost.prompts.service import PromptService
    from roost.security.content_guard import ContentGuard
    from roost.tools.service import ToolService

log = get_logger("roost.platform")
BUSINESS_METRICS_INTERVAL_S = 15.0


@dataclass(slots=True)
class RunExecution:
    """Whether this process executes runs: ``concurrency`` 0 only enqueues; ``eager``
    starts the executor at once (workers) instead of with the first run."""

    concurrency: int
    eager: bool = False

    @classmethod
    def for_server(cls, settings: Settings) -> RunExecution:
        workers = settings.runs.workers
        return cls(settings.agents.worker_concurrency if workers is None else workers)


@dataclass(frozen=True, slots=True)
class _Options:
    connect_mcp: bool
    local_engine: bool
    upkeep: bool


@dataclass(slots=True)
class Roost:
    settings: Settings
    platform: Platform
    inference: InferenceState
    tools: ToolService
    memory: MemoryServices | None
    llm: LLMService
    runs: AgentRunService
    limits: Limiter
    catalog: AgentCatalog
    traces: TraceService | None = None  # None with tracing.store off
    guard: ContentGuard | None = None  # PII and injection guardrails ([guardrails])
    _exit: AsyncExitStack = field(default_factory=AsyncExitStack)
    knowledge_syncer: Any = None  # the server's (server_upkeep), else None
    backup_ran: asyncio.Event | None = None  # set after each scheduled backup round
    prompts: PromptService | None = None  # managed prompts (``prompt:`` in specs)
    evals: EvalServices | None = None  # datasets, evaluations, experiments, feedback

    @classmethod
    async def open(
        cls,
        settings: Settings,
        *,
        platform: Platform | None = None,
        engine: Any = None,
        execution: RunExecution | None = None,
        connect_mcp: bool = True,
        local_engine: bool = True,
        upkeep: bool = True,
        server_upkeep: bool = False,
    ) -> Roost:
        """Open every service. ``platform`` and ``engine``, when given, are used and left
        open; ``execution`` defaults to the server's (``runs.workers``). ``local_engine``
        false serves no local model here (nor imports torch); ``upkeep`` false starts no
        background loop (memory consolidation, circuit probes). The server asks for
        ``server_upkeep``: scheduled backups (``[backup] every``) and knowledge folders
        kept fresh; workers and CLI commands do not."""
        exit_stack = AsyncExitStack()
        options = _Options(connect_mcp=connect_mcp, local_engine=local_engine, upkeep=upkeep)
        try:
            kernel = await cls._open(settings, exit_stack, platform, engine, execution, options)
            if server_upkeep and settings.backup.every is not None:
                from roost.backup.schedule import backup_periodically

                kernel.backup_ran = asyncio.Event()
                task = asyncio.ensure_future(backup_periodically(settings, ran=kernel.backup_ran))
                exit_stack.push_async_callback(_cancel, task)
            if server_upkeep:
                _keep_knowledge_fresh(kernel, exit_stack)
                if kernel.evals is not None and kernel.runs.executes:
                    # Evaluations whose loop stopped with a previous server go on here.
                    await kernel.evals.evaluations.resume_unfinished()
            return kernel
        except BaseException:
            await exit_stack.aclose()
            raise

    @classmethod
    async def open_for_command(cls, settings: Settings) -> Roost:
        """The kernel as a one-shot CLI command needs it: every service on the home's
        store, but no local model, no run execution, no MCP connections and no background
        loops, so that a command starts in seconds and leaves a running server alone."""
        return await cls.open(
            settings,
            execution=RunExecution(0),
            connect_mcp=False,
            local_engine=False,
            upkeep=False,
        )

    @classmethod
    async def _open(
        cls,
        settings: Settings,
        stack: AsyncExitStack,
        platform: Platform | None,
        engine: Any,
        execution: RunExecution | None,
        options: _Options,
    ) -> Roost:
        from roost.platform import wiring
        from roost.platform.inference import InferenceState

        if platform is None:
            platform = await Platform.open(settings)
            stack.push_async_callback(platform.close)
        limits = await _open_limits(platform, stack)
        inference = InferenceState()
        if options.local_engine:
            await inference.open(settings, engine)
        else:
            inference.disable("the local engine is not part of this process")
        stack.push_async_callback(inference.close)
        tools = await _open_tools(platform, stack, connect_mcp=options.connect_mcp)
        memory = await _open_memory(platform, stack, upkeep=options.upkeep)
        llm = await _open_llm(platform, inference, stack, upkeep=options.upkeep)
        llm.token_limits = limits
        traces = await _open_traces(platform, llm, stack)
        runs = await _open_runs(
            platform, llm, tools, memory, execution or RunExecution.for_server(settings), stack
        )
        from roost.agents.catalog import AgentCatalog

        # The catalog asks the kernel what it offers at each check: plugins, model swaps
        # and tenants' toolsets may change that after start.
        catalog = AgentCatalog(runs.registry, lambda tenant_id: offer_for(tenant_id))
        guard = wiring.content_guard(platform, runs.runtime, traces)
        kernel = cls(
            settings, platform, inference, tools, memory, llm, runs, limits, catalog, traces,
            guard, stack,
        )  # fmt: skip
        offer_for = wiring.spec_offer(kernel)
        await _open_prompts_and_evals(kernel, stack)
        from roost.tools.builtin.semantic import knowledge_search_tool, semantic_search_tool
        from roost.tools.toolsets import StaticToolset

        # Looked up per call: the kernel's memory may be replaced (tests, reloads).
        def search() -> Any:
            return wiring.knowledge_search(kernel.memory)

        tools.registry.add_shared(
            StaticToolset([semantic_search_tool(search), knowledge_search_tool(search)])
        )
        from roost.coding import bundled

        bundled.register(kernel)
        wiring.load_plugins(kernel)
        await runs.start()
        return kernel

    async def close(self) -> None:
        await self._exit.aclose()

    async def __aenter__(self) -> Roost:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


async def _open_limits(platform: Platform, stack: AsyncExitStack) -> Any:
    from roost.limits.service import Limiter

    limiter = await Limiter.open(platform.settings, platform.database, platform.redis)
    stack.push_async_callback(limiter.close)
    log.info("limits ready", store=limiter.store.backend, enabled=limiter.enabled)
    return limiter


async def _open_tools(platform: Platform, stack: AsyncExitStack, *, connect_mcp: bool) -> Any:
    from roost.observe.metrics import include_registry
    from roost.tools import metrics as tool_metrics
    from roost.tools.service import ToolService

    service = await ToolService.open(platform, connect_mcp=connect_mcp)
    stack.push_async_callback(service.close)
    include_registry(tool_metrics.REGISTRY)
    return service


async def _open_memory(platform: Platform, stack: AsyncExitStack, *, upkeep: bool) -> Any:
    from roost.memory.service import MemoryServices, consolidate_periodically

    memory = await MemoryServices.open(platform.settings, platform.database, platform.redis)
    stack.push_async_callback(memory.close)
    interval = platform.settings.memory.consolidation_interval_s
    if upkeep and interval > 0:

        async def tenant_ids() -> list[str]:
            return [t.id for t in await platform.tenants.list()]

        task = asyncio.create_task(consolidate_periodically(memory, tenant_ids, interval))
        stack.push_async_callback(_cancel, task)
    return memory


async def _open_llm(
    platform: Platform, inference: InferenceState, stack: AsyncExitStack, *, upkeep: bool
) -> Any:
    from roost.llm.cache import TextEmbedder
    from roost.llm.providers import ProviderRegistry
    from roost.llm.service import LLMService
    from roost.platform import wiring
    from roost.platform.provider_secrets import resolve_provider_secrets

    settings = platform.settings.llm
    embedder: TextEmbedder | None = None
    if settings.cache.enabled and settings.cache.semantic:
        from roost.llm.embeddings import create_embedder

        embedder = create_embedder("minilm")
    providers = await resolve_provider_secrets(
        settings.providers, platform.secrets(), await platform.default_tenant_id()
    )
    registry = ProviderRegistry(providers, local_factory=wiring.local_models(inference))
    service = await LLMService.open(
        settings, platform.database, redis=platform.redis, registry=registry, embedder=embedder
    )
    stack.push_async_callback(service.aclose)
    if upkeep:
        loop = asyncio.ensure_future(
            wiring.llm_upkeep(service, settings.circuit.health_check_interval_s)
        )
        stack.push_async_callback(_cancel, loop)
    log.info(
        "llm layer ready",
        groups=sorted(service.router.groups),
        cache=settings.cache.store if service.cache else "off",
        budgets=len(settings.budgets),
        prices=service.prices.version,
    )
    return service


async def _open_traces(platform: Platform, llm: Any, stack: AsyncExitStack) -> Any:
    from roost.observe.tracing import configure_tracing

    settings = platform.settings.tracing
    configure_tracing(settings)  # the worker has no app to do it
    if not settings.store:
        return None
    from roost.observe.trace_service import TraceService
    from roost.platform import wiring

    async def tenants() -> list[tuple[str, str]]:
        return [(t.id, t.name) for t in await platform.tenants.list()]

    service = await TraceService.open(
        platform.database, settings, cost_of=wiring.span_cost(llm.prices), tenants=tenants
    )
    # Closed after the run service (pushed before it): the runs' last spans get written.
    stack.push_async_callback(service.close)
    _open_metrics(platform, stack)
    return service


def _open_metrics(platform: Platform, stack: AsyncExitStack) -> None:
    """Process, system and business metrics at /metrics (business ones price runs from
    the trace store, so they come with it)."""
    from roost.observe import business_metrics, process_metrics

    process_metrics.install(platform.settings.home)
    task = asyncio.ensure_future(
        business_metrics.refresh_periodically(platform.database, BUSINESS_METRICS_INTERVAL_S)
    )
    stack.push_async_callback(_cancel, task)


async def _open_runs(
    platform: Platform,
    llm: Any,
    tools: Any,
    memory: Any,
    execution: RunExecution,
    stack: AsyncExitStack,
) -> Any:
    from roost.agents.graphs import RunGraphs, load_graphs
    from roost.agents.registry import AgentRegistry
    from roost.agents.run_routing import RunRouting, priced_by
    from roost.agents.runtime import AgentRuntime, ExecutorToolRunner
    from roost.agents.schema import AGENT_MIGRATIONS
    from roost.agents.service import AgentRunService, ExecutionSettings
    from roost.agents.store import RunStore
    from roost.agents.webhooks import WebhookSender
    from roost.platform import wiring
    from roost.runs.events import RunEventLog
    from roost.runs.schema import RUN_MIGRATIONS
    from roost.runs.signals import choose_transport
    from roost.storage import migrate
    from roost.tools.netguard import NetworkPolicy

    settings = platform.settings
    await migrate(platform.database, AGENT_MIGRATIONS)
    await migrate(platform.database, RUN_MIGRATIONS)
    routing = await RunRouting.open(
        platform.database, settings.agents.routing, cost_of=priced_by(llm)
    )
    runtime = AgentRuntime(llm, ExecutorToolRunner(tools), memory=memory, routing=routing)
    registry = AgentRegistry(platform.database)
    checkpoints_path, checkpoints_url = wiring.checkpoints(settings)
    graphs = RunGraphs(
        registry, runtime, checkpoints_path=checkpoints_path, checkpoints_url=checkpoints_url
    )
    for spec in settings.agents.graphs:
        graphs.plain.update(load_graphs(spec))
    agents = settings.agents
    events = RunEventLog(
        platform.database,
        choose_transport(platform.database, platform.redis),
        poll_s=settings.runs.events_poll_s,
    )
    service = AgentRunService(
        RunStore(platform.database),
        registry,
        runtime,
        graphs,
        events,
        ExecutionSettings(
            runs_url=wiring.runs_url(settings),
            concurrency=execution.concurrency,
            eager=execution.eager,
            heartbeat_interval_s=settings.runs.heartbeat_interval_s,
            takeover_after_s=settings.runs.takeover_after_s,
        ),
        webhooks=WebhookSender(
            wiring.webhook_secret(settings),
            max_attempts=agents.webhook_max_attempts,
            backoff_s=agents.webhook_backoff_s,
            timeout_s=agents.webhook_timeout_s,
            # Tenants choose webhook URLs: the SSRF guard of http_fetch applies to them too.
            network=NetworkPolicy(
                allowed_networks=tuple(settings.tools.http_allowed_networks),
                max_redirects=0,
                timeout_s=agents.webhook_timeout_s,
            ),
        ),
    )
    graphs.host_key = service.host_key
    stack.push_async_callback(service.close)
    return service


async def _open_prompts_and_evals(kernel: Roost, stack: AsyncExitStack) -> None:
    from roost.agents.run_routing import priced_by
    from roost.evals.service import EvalServices
    from roost.prompts.service import PromptService

    settings = kernel.settings
    database = kernel.platform.database
    kernel.prompts = await PromptService.open(
        database,
        cache_ttl_s=settings.prompts.cache_ttl_s,
        stale_for_s=settings.prompts.stale_for_s,
    )
    kernel.runs.prompts = kernel.prompts
    kernel.runs.runtime.prompts = kernel.prompts
    kernel.evals = await EvalServices.open(
        database, kernel.runs, kernel.catalog, kernel.llm, settings.evals, priced_by(kernel.llm)
    )
    # Closed before the run service: an evaluation's loop stops before its runs' host.
    stack.push_async_callback(kernel.evals.close)


def _keep_knowledge_fresh(kernel: Roost, stack: AsyncExitStack) -> None:
    memory = kernel.settings.memory
    if kernel.memory is None or not (memory.knowledge_sync_interval_s or memory.knowledge_watch):
        return
    from roost.memory.knowledge_sync import KnowledgeSyncer

    syncer = KnowledgeSyncer(
        kernel.memory.knowledge,
        interval_s=memory.knowledge_sync_interval_s,
        watch=memory.knowledge_watch,
    )
    syncer.start()
    stack.push_async_callback(syncer.close)
    kernel.knowledge_syncer = syncer


async def _cancel(task: asyncio.Task[Any] | asyncio.Future[Any]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
