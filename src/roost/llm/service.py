"""``LLMService``: the one entry point above this layer (gateway endpoints, agents, CLI).

Per call: resolve the model group, answer from the response cache when allowed,
reserve the worst-case cost against budgets, route (retries, failover), then settle
the budget to the actual cost and write the usage record in one transaction.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import AsyncGenerator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from roost.config import LLMSettings
from roost.llm import telemetry
from roost.llm.base import NO_SETTINGS, Model, RequestContext, response_events
from roost.llm.budgets import EMPTY_RESERVATION, BudgetLedger, Reservation
from roost.llm.cache import (
    DatabaseCacheStore,
    MemoryCacheStore,
    RedisCacheStore,
    ResponseCache,
    TextEmbedder,
)
from roost.llm.cost import PriceTable, usd
from roost.llm.group_commit import GroupCommitter
from roost.llm.limits import DEFAULT_CONTEXT_LENGTH, KnowsLimits, ModelLimits, tighter
from roost.llm.messages import (
    Message,
    ModelSettings,
    Response,
    ResponseDone,
    StreamEvent,
    TextDelta,
    ToolDefinition,
    Usage,
)
from roost.llm.metering import Meter, TokenLimits
from roost.llm.providers import ProviderRegistry
from roost.llm.router import ModelGroup, Router
from roost.llm.schema import LLM_MIGRATIONS
from roost.llm.usage import UsageRecord, UsageStatus, UsageStore
from roost.storage import Database, migrate
from roost.storage.redis import RedisClient

if TYPE_CHECKING:
    # Imported where used: the local chat path loads the engine (torch), which processes
    # without a local model (CLI commands) never need.
    from roost.chat import ChatService
    from roost.llm.embeddings import MiniLMEmbedder
    from roost.llm.local_chat import MeteredChat
    from roost.llm.local_embeddings import MeteredEmbedder

# Tokens are never fewer than a third of the characters for the tokenizers in use,
# so this over-estimates input and budgets err on the side of refusing.
_CHARS_PER_TOKEN = 3
_TOKENS_PER_MESSAGE = 8


@dataclass(frozen=True, slots=True)
class CallOptions:
    """Per-call switches: skip the cache (read and write) for this request."""

    use_cache: bool = True


DEFAULT_OPTIONS = CallOptions()


class LLMService:
    """Routes calls for a tenant with caching, budgets, usage records and telemetry."""

    def __init__(
        self,
        router: Router,
        *,
        usage: UsageStore | None = None,
        budgets: BudgetLedger | None = None,
        cache: ResponseCache | None = None,
        reserve_max_tokens: int = 1024,
        context_lengths: Mapping[str, int] | None = None,
        default_context_length: int = DEFAULT_CONTEXT_LENGTH,
    ) -> None:
        self.router = router
        self.context_lengths = dict(context_lengths or {})
        self.default_context_length = default_context_length
        self.prices: PriceTable = router.prices
        self.usage = usage
        self.budgets = budgets
        self.cache = cache
        self.reserve_max_tokens = reserve_max_tokens
        store = usage or budgets
        self._writes = GroupCommitter(store.database) if store is not None else None
        self.meter = Meter(self.prices, usage, budgets, self._writes)
        # Tokens-per-minute limits of HTTP callers; the kernel sets its limiter here.
        self.token_limits: TokenLimits | None = None

    @classmethod
    async def open(
        cls,
        settings: LLMSettings,
        database: Database | None,
        *,
        redis: RedisClient | None = None,
        registry: ProviderRegistry | None = None,
        embedder: TextEmbedder | None = None,
    ) -> LLMService:
        """Build the service from ``[llm]`` settings; migrates the ``llm`` tables when given a database."""
        registry = registry or ProviderRegistry(settings.providers)
        router = Router.from_settings(settings, registry)
        usage = budgets = None
        if database is not None:
            await migrate(database, LLM_MIGRATIONS)
            usage = UsageStore(database)
            budgets = BudgetLedger(database, settings.budgets)
        cache = None
        if settings.cache.enabled:
            store: MemoryCacheStore | DatabaseCacheStore | RedisCacheStore
            if settings.cache.store == "redis" and redis is not None:
                store = RedisCacheStore(redis)
            elif settings.cache.store == "database" and database is not None:
                store = DatabaseCacheStore(database)
            else:
                store = MemoryCacheStore(settings.cache.max_entries)
            cache = ResponseCache(
                store,
                ttl_s=settings.cache.ttl_s,
                embedder=embedder if settings.cache.semantic else None,
                similarity_threshold=settings.cache.similarity_threshold,
                allow_numbers=settings.cache.semantic_allow_numbers,
                allow_pii=settings.cache.semantic_allow_pii,
            )
        return cls(
            router,
            usage=usage,
            budgets=budgets,
            cache=cache,
            reserve_max_tokens=settings.reserve_max_tokens,
            context_lengths=settings.context_lengths,
            default_context_length=settings.default_context_length,
        )

    def local_chat(self, chat: ChatService, context: RequestContext) -> MeteredChat:
        """The local chat service for one HTTP caller, metered (usage, budgets) and held
        to the caller's tokens-per-minute limits."""
        from roost.llm.local_chat import MeteredChat

        return MeteredChat(chat, self.meter, context, self.token_limits)

    def local_embeddings(
        self, embedder: MiniLMEmbedder, context: RequestContext
    ) -> MeteredEmbedder:
        """The local embedding model for one HTTP caller, metered like :meth:`local_chat`."""
        from roost.llm.local_embeddings import MeteredEmbedder

        return MeteredEmbedder(embedder, self.meter, context, self.token_limits)

    async def aclose(self) -> None:
        if self._writes is not None:
            await self._writes.aclose()
        await self.router.registry.aclose()

    async def limits(self, model: str) -> ModelLimits:
        """The context length and token counter of ``model`` (a group, policy or
        ``provider:model``): the tightest over every deployment a request may land on."""
        if model in self.router.policies:
            groups = list(self.router.groups.values())
        else:
            groups = [self.router.resolve(model)]
        found: ModelLimits | None = None
        for group in groups:
            configured = self.context_lengths.get(group.name)
            for deployment in group.deployments:
                limits = await self._deployment_limits(deployment.model, configured)
                found = limits if found is None else tighter(found, limits)
        return found or ModelLimits(self.default_context_length)

    async def _deployment_limits(self, model: Model, configured: int | None) -> ModelLimits:
        configured = self.context_lengths.get(model.model_id, configured)
        own = await model.limits() if isinstance(model, KnowsLimits) else None
        if own is not None:
            if configured is not None and configured < own.context_length:
                return ModelLimits(configured, own.count_tokens, own.exact)
            return own
        return ModelLimits(configured or self.default_context_length)

    async def request(
        self,
        model: str,
        messages: Sequence[Message],
        settings: ModelSettings = NO_SETTINGS,
        tools: Sequence[ToolDefinition] = (),
        *,
        context: RequestContext,
        options: CallOptions = DEFAULT_OPTIONS,
    ) -> Response:
        """Answer ``messages`` with model group (or ``provider:model``) ``model`` for ``context``."""
        group = self.router.resolve(model, messages, tools, settings)
        started = time.perf_counter()
        key = self._cache_key(group, messages, settings, tools, context, options)
        cached = await self._cached(group, messages, settings, tools, context, key)
        if cached is not None:
            return cached
        reservation = await self._reserve(group, messages, settings, tools, context)
        settings = self._capped(settings, reservation)
        try:
            response = await self.router.request(group.name, messages, settings, tools, context)
        except BaseException:
            await self._finish(reservation, group, context, None, started, "error")
            raise
        await self._finish(reservation, group, context, response, started, "ok")
        if self.cache is not None and key is not None:
            await self.cache.put(
                context.tenant_id, group.name, messages, settings, tools, response, key=key
            )
        return response

    async def request_stream(
        self,
        model: str,
        messages: Sequence[Message],
        settings: ModelSettings = NO_SETTINGS,
        tools: Sequence[ToolDefinition] = (),
        *,
        context: RequestContext,
        options: CallOptions = DEFAULT_OPTIONS,
    ) -> AsyncGenerator[StreamEvent, None]:
        """Stream the answer; the last event is :class:`ResponseDone`. Budget, usage and
        cache are settled when the stream ends, fails, or the caller stops reading."""
        group = self.router.resolve(model, messages, tools, settings)
        started = time.perf_counter()
        key = self._cache_key(group, messages, settings, tools, context, options)
        cached = await self._cached(group, messages, settings, tools, context, key)
        if cached is not None:
            for event in response_events(cached):
                yield event
            return
        reservation = await self._reserve(group, messages, settings, tools, context)
        settings = self._capped(settings, reservation)
        final: Response | None = None
        streamed: list[str] = []
        status: UsageStatus = "cancelled"
        try:
            async for event in self.router.request_stream(
                group.name, messages, settings, tools, context
            ):
                if isinstance(event, ResponseDone):
                    final = event.response
                    status = "ok"
                elif isinstance(event, TextDelta):
                    streamed.append(event.text)
                yield event
        except Exception:
            status = "error"
            raise
        finally:
            if final is None and streamed:
                # Cut short: charge what was delivered, estimated from its length.
                text = "".join(streamed)
                final = Response(
                    Message.assistant(text),
                    "error",
                    Usage(self._estimate_input(messages, tools), -(-len(text) // 4)),
                    "",
                    None,
                )
            await self._finish(reservation, group, context, final, started, status)
        if final is not None and status == "ok" and self.cache is not None and key is not None:
            await self.cache.put(
                context.tenant_id, group.name, messages, settings, tools, final, key=key
            )

    def _cache_key(
        self,
        group: ModelGroup,
        messages: Sequence[Message],
        settings: ModelSettings,
        tools: Sequence[ToolDefinition],
        context: RequestContext,
        options: CallOptions,
    ) -> str | None:
        if self.cache is None or not options.use_cache:
            return None
        return self.cache.exact_key(context.tenant_id, group.name, messages, settings, tools)

    async def _cached(
        self,
        group: ModelGroup,
        messages: Sequence[Message],
        settings: ModelSettings,
        tools: Sequence[ToolDefinition],
        context: RequestContext,
        key: str | None,
    ) -> Response | None:
        if self.cache is None or key is None:
            return None
        hit = await self.cache.lookup(
            context.tenant_id, group.name, messages, settings, tools, key=key
        )
        if hit is None:
            return None
        if self.usage is not None and self._writes is not None:
            record = UsageRecord(
                context,
                hit.response.model,
                Usage(),
                0,
                0,
                cache=hit.tier,
                model_group=group.name,
                price_version=self.prices.version,
            )
            usage = self.usage
            await self._writes.run(lambda conn: usage.record(record, conn))
        return hit.response

    def _estimate_input(self, messages: Sequence[Message], tools: Sequence[ToolDefinition]) -> int:
        chars = sum(len(str(p)) for m in messages for p in m.parts)
        chars += sum(len(json.dumps(t.parameters)) + len(t.description) for t in tools)
        return chars // _CHARS_PER_TOKEN + _TOKENS_PER_MESSAGE * len(messages)

    def estimate_cost_nano(
        self,
        group: ModelGroup,
        messages: Sequence[Message],
        settings: ModelSettings,
        tools: Sequence[ToolDefinition],
    ) -> int:
        """Worst case over the group's deployments (failover may land on the dearest)."""
        worst = Usage(
            self._estimate_input(messages, tools), settings.max_tokens or self.reserve_max_tokens
        )
        return max((self.prices.cost_nano(d.model_id, worst) for d in group.deployments), default=0)

    async def _reserve(
        self,
        group: ModelGroup,
        messages: Sequence[Message],
        settings: ModelSettings,
        tools: Sequence[ToolDefinition],
        context: RequestContext,
    ) -> Reservation:
        if self.budgets is None:
            return EMPTY_RESERVATION
        amount = self.estimate_cost_nano(group, messages, settings, tools)
        tokens = self.estimate_tokens(messages, settings, tools)
        return await self.meter.reserve(context, cost_nano=amount, tokens=tokens)

    def estimate_tokens(
        self,
        messages: Sequence[Message],
        settings: ModelSettings,
        tools: Sequence[ToolDefinition],
    ) -> int:
        """A call's worst case in tokens: input (over-estimated) plus its output limit."""
        output = settings.max_tokens or self.reserve_max_tokens
        return self._estimate_input(messages, tools) + output

    def _capped(self, settings: ModelSettings, reservation: Reservation) -> ModelSettings:
        """Under a budget, a request without ``max_tokens`` may produce no more output than
        was reserved for it, so the settled cost cannot outrun the reservation."""
        if reservation.is_empty or settings.max_tokens is not None:
            return settings
        return dataclasses.replace(settings, max_tokens=self.reserve_max_tokens)

    async def _finish(
        self,
        reservation: Reservation,
        group: ModelGroup,
        context: RequestContext,
        response: Response | None,
        started: float,
        status: UsageStatus,
    ) -> None:
        latency_ms = int((time.perf_counter() - started) * 1000)
        model_id = (response.model if response is not None else "") or group.deployments[0].model_id
        usage = response.usage if response is not None else Usage()
        if response is not None and status == "ok":
            cost = self.prices.cost_nano(model_id, usage)
            telemetry.record_metrics(response, latency_ms / 1000, usd(cost))
        await self.meter.record(
            reservation, context, model_id, usage, latency_ms, status,
            cache="miss" if self.cache is not None else "off", group=group.name,
        )  # fmt: skip
