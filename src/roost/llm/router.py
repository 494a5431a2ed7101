"""Router: named model groups, strategies, retries, failover and circuit breakers.

One loop owns retrying (every SDK's own retries are off). Per deployment: retryable
errors are retried with backoff, rate limits honour retry-after, then the next
deployment in the strategy's order is tried. A stream that already handed tokens to
the caller is never retried: the caller gets :class:`StreamInterrupted`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass

from roost.config import LLMSettings
from roost.errors import Overloaded
from roost.llm import telemetry
from roost.llm.base import NO_SETTINGS, RequestContext
from roost.llm.complexity import ComplexityPolicy, RoutingPolicy
from roost.llm.cost import PriceTable
from roost.llm.errors import (
    ProviderError,
    ProviderRateLimited,
    ProviderUnavailable,
    StreamInterrupted,
    UnknownModel,
)
from roost.llm.health import SYSTEM_CLOCK, CircuitState, Clock, DeploymentHealth
from roost.llm.messages import (
    Message,
    ModelSettings,
    Response,
    ResponseDone,
    StreamEvent,
    ToolDefinition,
)
from roost.llm.providers import ProviderRegistry
from roost.llm.retry import FailoverRetryPolicy, RetryCounts
from roost.llm.strategies import Deployment, Strategy, make_strategy


@dataclass(slots=True)
class ModelGroup:
    """A name callers use, served by ordered deployments under one strategy."""

    name: str
    deployments: list[Deployment]
    strategy: Strategy


class Router:
    """Routes requests for a group name (or a ``provider:model`` id) to a healthy deployment."""

    def __init__(
        self,
        registry: ProviderRegistry,
        groups: Mapping[str, ModelGroup] | None = None,
        *,
        prices: PriceTable | None = None,
        retry: FailoverRetryPolicy | None = None,
        clock: Clock = SYSTEM_CLOCK,
        failure_threshold: int = 5,
        reset_after_s: float = 30.0,
        policies: Mapping[str, RoutingPolicy] | None = None,
    ) -> None:
        self.registry = registry
        self.groups: dict[str, ModelGroup] = dict(groups or {})
        self.prices = prices or PriceTable.load()
        self.retry = retry or FailoverRetryPolicy()
        self.clock = clock
        self.failure_threshold = failure_threshold
        self.reset_after_s = reset_after_s
        self.policies: dict[str, RoutingPolicy] = dict(policies or {})
        # Groups made on the fly for bare ``provider:model`` ids, apart from the configured
        # ones: only configured names are offered to HTTP callers (see ``is_served``).
        self._ad_hoc_groups: dict[str, ModelGroup] = {}
        # One health record per deployment id, shared by every group that uses it.
        self._health: dict[str, DeploymentHealth] = {}

    @classmethod
    def from_settings(
        cls,
        settings: LLMSettings,
        registry: ProviderRegistry,
        *,
        prices: PriceTable | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> Router:
        """A router for ``[llm]``: its groups, retry table, circuit settings and complexity policy."""
        prices = prices or PriceTable.load(settings.prices)
        router = cls(
            registry,
            prices=prices,
            retry=FailoverRetryPolicy.from_settings(settings.retry),
            clock=clock,
            failure_threshold=settings.circuit.failure_threshold,
            reset_after_s=settings.circuit.reset_after_s,
        )
        for name, group in settings.groups.items():
            router.add_group(
                name, [(d.model, d.weight) for d in group.deployments], strategy=group.strategy
            )
        policy = ComplexityPolicy.from_settings(settings.complexity)
        if policy is not None:
            router.policies[settings.complexity.group] = policy
        return router

    def add_group(
        self, name: str, deployments: Sequence[tuple[str, float]], *, strategy: str = "priority"
    ) -> ModelGroup:
        """Define (or replace) group ``name`` from ``(model_id, weight)`` pairs."""
        group = self._make_group(name, deployments, strategy)
        self.groups[name] = group
        return group

    def served_names(self) -> list[str]:
        """The names operators configured: groups and routing policies, sorted."""
        return sorted({*self.groups, *self.policies})

    def is_served(self, name: str) -> bool:
        """Whether ``name`` is a configured group or policy (not a bare ``provider:model`` id)."""
        return name in self.groups or name in self.policies

    def _make_group(
        self, name: str, deployments: Sequence[tuple[str, float]], strategy: str
    ) -> ModelGroup:
        return ModelGroup(
            name,
            [
                Deployment(self.registry.model(model_id), weight, self.health(model_id))
                for model_id, weight in deployments
            ],
            make_strategy(strategy, self.prices),
        )

    def health(self, model_id: str) -> DeploymentHealth:
        """The health record of a deployment (made on first use)."""
        health = self._health.get(model_id)
        if health is None:
            health = DeploymentHealth(self.failure_threshold, self.reset_after_s)
            self._health[model_id] = health
        return health

    def resolve(
        self,
        name: str,
        messages: Sequence[Message] = (),
        tools: Sequence[ToolDefinition] = (),
        settings: ModelSettings = NO_SETTINGS,
    ) -> ModelGroup:
        """The group that serves ``name``: a configured group, a routing policy's pick, or a
        one-deployment group for a bare ``provider:model`` id."""
        policy = self.policies.get(name)
        if policy is not None:
            name = policy.choose(messages, tools, settings)
        group = self.groups.get(name) or self._ad_hoc_groups.get(name)
        if group is not None:
            return group
        if ":" in name:
            group = self._make_group(name, [(name, 1.0)], "priority")
            self._ad_hoc_groups[name] = group
            return group
        known = ", ".join(self.served_names()) or "none configured"
        raise UnknownModel(f"no model group named {name!r} (groups: {known})", param="model")

    async def request(
        self,
        name: str,
        messages: Sequence[Message],
        settings: ModelSettings = NO_SETTINGS,
        tools: Sequence[ToolDefinition] = (),
        context: RequestContext | None = None,
    ) -> Response:
        """Answer with the first deployment that succeeds, retrying and failing over."""
        group = self.resolve(name, messages, tools, settings)
        last_error: ProviderError | None = None
        for deployment in self._candidates(group):
            counts = RetryCounts()
            while deployment.health.begin_attempt(self.clock.monotonic()):
                attempt = counts.num_errors + counts.num_rate_limited
                started = self.clock.monotonic()
                with telemetry.chat_span(
                    deployment.model_id,
                    self._kind(deployment),
                    settings,
                    context,
                    group=group.name,
                    attempt=attempt,
                    messages=messages,
                ) as span:
                    try:
                        response = await deployment.model.request(
                            messages, settings, tools, context
                        )
                    except ProviderError as exc:
                        telemetry.record_error(span, exc)
                        last_error = exc
                        if not await self._after_failure(deployment, exc, counts):
                            break
                        continue
                    except BaseException:
                        deployment.health.release()
                        raise
                    telemetry.record_response(span, response, _tenant(context))
                self._succeeded(deployment, started)
                return response
        raise self._exhausted(group, last_error)

    async def request_stream(
        self,
        name: str,
        messages: Sequence[Message],
        settings: ModelSettings = NO_SETTINGS,
        tools: Sequence[ToolDefinition] = (),
        context: RequestContext | None = None,
    ) -> AsyncIterator[StreamEvent]:
        """Stream from the first deployment that starts answering; retry and fail over only
        while nothing has reached the caller."""
        group = self.resolve(name, messages, tools, settings)
        last_error: ProviderError | None = None
        for deployment in self._candidates(group):
            counts = RetryCounts()
            while deployment.health.begin_attempt(self.clock.monotonic()):
                attempt = counts.num_errors + counts.num_rate_limited
                started = self.clock.monotonic()
                has_emitted = False
                with telemetry.chat_span(
                    deployment.model_id,
                    self._kind(deployment),
                    settings,
                    context,
                    group=group.name,
                    attempt=attempt,
                    messages=messages,
                ) as span:
                    try:
                        stream = deployment.model.request_stream(messages, settings, tools, context)
                        async for event in stream:
                            if isinstance(event, ResponseDone):
                                telemetry.record_response(span, event.response, _tenant(context))
                                self._succeeded(deployment, started)
                            has_emitted = True
                            yield event
                        return
                    except ProviderError as exc:
                        telemetry.record_error(span, exc)
                        if has_emitted:
                            deployment.health.record_failure(self.clock.monotonic())
                            telemetry.record_failure_metric(deployment.model_id, "interrupted")
                            raise StreamInterrupted(
                                f"{deployment.model_id} failed after the stream began: {exc.message}",
                                deployment=deployment.model_id,
                            ) from exc
                        last_error = exc
                        if not await self._after_failure(deployment, exc, counts):
                            break
                    except BaseException:
                        deployment.health.release()
                        raise
        raise self._exhausted(group, last_error)

    async def probe(self, name: str) -> dict[str, str]:
        """Send a one-token request to every deployment of ``name`` whose circuit may be probed;
        return each deployment's circuit state afterwards (the health check)."""
        group = self.resolve(name)
        now = self.clock.monotonic()
        for deployment in group.deployments:
            health = deployment.health
            if health.state is not CircuitState.CLOSED and health.begin_attempt(now):
                started = self.clock.monotonic()
                try:
                    await deployment.model.request(
                        [Message.user("ping")], ModelSettings(max_tokens=1)
                    )
                except ProviderError:
                    health.record_failure(self.clock.monotonic())
                else:
                    self._succeeded(deployment, started)
        return {d.model_id: d.health.state.value for d in group.deployments}

    def _candidates(self, group: ModelGroup) -> list[Deployment]:
        now = self.clock.monotonic()
        ordered = group.strategy.order(group.deployments)
        available = [d for d in ordered if d.health.can_attempt(now)]
        if not available:
            wait = min(d.health.available_at() for d in group.deployments) - now
            raise Overloaded(
                f"every deployment of {group.name!r} is unavailable (circuit open or cooling down)",
                retry_after_s=max(wait, 0.0),
            )
        return available

    async def _after_failure(
        self, deployment: Deployment, error: ProviderError, counts: RetryCounts
    ) -> bool:
        """Record ``error``; wait and return True to retry the same deployment, False to move on."""
        now = self.clock.monotonic()
        health = deployment.health
        is_rate_limit = isinstance(error, ProviderRateLimited)
        if is_rate_limit:
            # A rate limit says nothing about health: no circuit count, just back off.
            health.release()
        else:
            health.record_failure(now)
        telemetry.record_failure_metric(
            deployment.model_id, "rate_limited" if is_rate_limit else "error"
        )
        telemetry.LLM_CIRCUIT.labels(deployment.model_id).set(
            0 if health.state is CircuitState.CLOSED else 1
        )
        if not error.is_failover:
            raise error
        delay = None if health.state is not CircuitState.CLOSED else self.retry.delay(error, counts)
        if delay is None:
            if isinstance(error, ProviderRateLimited) and error.retry_after_s:
                health.cool_down(now + error.retry_after_s)
            telemetry.LLM_RETRIES.labels(deployment.model_id, "failover").inc()
            return False
        telemetry.LLM_RETRIES.labels(deployment.model_id, error.code).inc()
        await self.clock.sleep(delay)
        return True

    def _succeeded(self, deployment: Deployment, started: float) -> None:
        deployment.health.record_success(self.clock.monotonic() - started)
        telemetry.LLM_CIRCUIT.labels(deployment.model_id).set(0)

    def _kind(self, deployment: Deployment) -> str:
        return self.registry.kind(deployment.model_id.partition(":")[0])

    def _exhausted(self, group: ModelGroup, last_error: ProviderError | None) -> Exception:
        if isinstance(last_error, ProviderRateLimited):
            return last_error  # a 429 with retry-after for the caller: "queue for later"
        if last_error is None:
            return Overloaded(f"every deployment of {group.name!r} is busy; try again shortly")
        return ProviderUnavailable(
            f"every deployment of {group.name!r} failed; last error: {last_error.message}",
            deployment=last_error.deployment,
            status_code=last_error.status_code,
        )


def _tenant(context: RequestContext | None) -> str | None:
    return context.tenant_id if context is not None else None
