"""Router: failover order, the retry table with an injected clock, circuit breakers,
strategies, streaming rules and complexity routing."""

from __future__ import annotations

import pytest

from roost.config import LLMSettings, TracingSettings
from roost.errors import Overloaded
from roost.llm.cost import Price, PriceTable
from roost.llm.errors import (
    ProviderAuthError,
    ProviderRateLimited,
    ProviderRejected,
    ProviderUnavailable,
    StreamInterrupted,
    UnknownModel,
)
from roost.llm.health import CircuitState
from roost.llm.messages import Message, ResponseDone, TextDelta, ToolDefinition
from roost.llm.providers import ProviderRegistry
from roost.llm.retry import FailoverRetryPolicy
from roost.llm.router import Router
from roost.observe.tracing import RECENT_SPANS, configure_tracing
from tests.llm.scripted import FakeClock, Outcome, ScriptedModel

HI = [Message.user("hi")]


def unavailable(model: str = "a:m") -> ProviderUnavailable:
    return ProviderUnavailable("boom", deployment=model, status_code=500)


def make_router(
    clock: FakeClock, *models: ScriptedModel, strategy: str = "priority", **kwargs: object
) -> Router:
    registry = ProviderRegistry(env={})
    for model in models:
        registry.register(model)
    retry = kwargs.pop("retry", FailoverRetryPolicy(random=lambda: 0.0))
    router = Router(registry, clock=clock, retry=retry, **kwargs)  # type: ignore[arg-type]
    router.add_group("chat", [(m.model_id, 1.0) for m in models], strategy=strategy)
    return router


async def test_api_errors_retry_at_1_2_4_seconds_then_fail_over() -> None:
    clock = FakeClock()
    a, b = ScriptedModel("a:m"), ScriptedModel("b:m")
    a.fail(unavailable(), times=10)
    router = make_router(clock, a, b, failure_threshold=10)
    response = await router.request("chat", HI)
    assert response.model == "b:m"
    assert a.num_calls == 4  # the first try and three retries
    assert clock.sleeps == [1.0, 2.0, 4.0]


async def test_backoff_jitter_stretches_each_wait() -> None:
    clock = FakeClock()
    a = ScriptedModel("a:m")
    a.fail(unavailable(), times=2)
    router = make_router(clock, a, retry=FailoverRetryPolicy(jitter=0.1, random=lambda: 1.0))
    assert (await router.request("chat", HI)).model == "a:m"
    assert clock.sleeps == [1.1, 2.2]


async def test_rate_limit_waits_for_retry_after_on_the_same_deployment() -> None:
    clock = FakeClock()
    a, b = ScriptedModel("a:m"), ScriptedModel("b:m")
    a.fail(ProviderRateLimited("slow down", retry_after_s=2.5, deployment="a:m"), times=2)
    router = make_router(clock, a, b)
    assert (await router.request("chat", HI)).model == "a:m"
    assert clock.sleeps == [2.5, 2.5]
    assert b.num_calls == 0


async def test_long_retry_after_fails_over_now_and_cools_the_deployment() -> None:
    clock = FakeClock()
    a, b = ScriptedModel("a:m"), ScriptedModel("b:m")
    a.fail(ProviderRateLimited("slow down", retry_after_s=60, deployment="a:m"))
    router = make_router(clock, a, b)
    assert (await router.request("chat", HI)).model == "b:m"
    assert clock.sleeps == []
    assert (await router.request("chat", HI)).model == "b:m"
    assert a.num_calls == 1  # skipped while cooling down
    clock.advance(61)
    assert (await router.request("chat", HI)).model == "a:m"


async def test_rate_limits_everywhere_surface_as_429_with_retry_after() -> None:
    clock = FakeClock()
    a = ScriptedModel("a:m")
    a.fail(ProviderRateLimited("slow down", retry_after_s=1, deployment="a:m"), times=4)
    router = make_router(clock, a)
    with pytest.raises(ProviderRateLimited) as caught:
        await router.request("chat", HI)
    assert caught.value.status == 429
    assert caught.value.retry_after_s == 1
    assert clock.sleeps == [1, 1, 1]


async def test_rejected_request_is_neither_retried_nor_failed_over() -> None:
    clock = FakeClock()
    a, b = ScriptedModel("a:m"), ScriptedModel("b:m")
    a.fail(ProviderRejected("bad", deployment="a:m", status_code=400))
    router = make_router(clock, a, b)
    with pytest.raises(ProviderRejected):
        await router.request("chat", HI)
    assert (a.num_calls, b.num_calls) == (1, 0)


async def test_auth_error_fails_over_without_retrying() -> None:
    clock = FakeClock()
    a, b = ScriptedModel("a:m"), ScriptedModel("b:m")
    a.fail(ProviderAuthError("no key", deployment="a:m", status_code=401))
    router = make_router(clock, a, b)
    assert (await router.request("chat", HI)).model == "b:m"
    assert a.num_calls == 1
    assert clock.sleeps == []


async def test_every_deployment_failing_names_the_group_and_last_error() -> None:
    clock = FakeClock()
    a = ScriptedModel("a:m")
    a.fail(unavailable(), times=10)
    router = make_router(clock, a, retry=FailoverRetryPolicy(max_retries=1, random=lambda: 0.0))
    with pytest.raises(ProviderUnavailable, match="every deployment of 'chat' failed"):
        await router.request("chat", HI)


async def test_circuit_opens_after_threshold_and_half_opens_for_one_probe() -> None:
    clock = FakeClock()
    a, b = ScriptedModel("a:m"), ScriptedModel("b:m")
    a.fail(unavailable(), times=2)
    router = make_router(
        clock, a, b, retry=FailoverRetryPolicy(max_retries=0), failure_threshold=2, reset_after_s=30
    )
    await router.request("chat", HI)  # a fails once, b answers
    await router.request("chat", HI)  # a fails again: circuit opens
    health = router.health("a:m")
    assert health.state is CircuitState.OPEN
    await router.request("chat", HI)
    assert a.num_calls == 2  # open circuit: not asked
    clock.advance(30)
    assert health.can_attempt(clock.monotonic())
    assert health.begin_attempt(clock.monotonic())
    assert health.state is CircuitState.HALF_OPEN
    assert not health.can_attempt(clock.monotonic())  # only one probe at a time
    health.release()
    assert (await router.request("chat", HI)).model == "a:m"  # the probe succeeds
    assert health.state is CircuitState.CLOSED


async def test_failed_probe_reopens_the_circuit() -> None:
    clock = FakeClock()
    a, b = ScriptedModel("a:m"), ScriptedModel("b:m")
    a.fail(unavailable(), times=3)
    router = make_router(clock, a, b, retry=FailoverRetryPolicy(max_retries=0), failure_threshold=2)
    await router.request("chat", HI)
    await router.request("chat", HI)
    clock.advance(30)
    assert (await router.request("chat", HI)).model == "b:m"  # a's probe failed
    assert a.num_calls == 3
    assert router.health("a:m").state is CircuitState.OPEN


async def test_all_circuits_open_is_overloaded() -> None:
    clock = FakeClock()
    a = ScriptedModel("a:m")
    a.fail(unavailable(), times=5)
    router = make_router(clock, a, retry=FailoverRetryPolicy(max_retries=0), failure_threshold=1)
    with pytest.raises(ProviderUnavailable):
        await router.request("chat", HI)
    with pytest.raises(Overloaded, match="unavailable"):
        await router.request("chat", HI)


async def test_probe_closes_a_recovered_circuit() -> None:
    clock = FakeClock()
    a = ScriptedModel("a:m")
    a.fail(unavailable())
    router = make_router(clock, a, retry=FailoverRetryPolicy(max_retries=0), failure_threshold=1)
    with pytest.raises(ProviderUnavailable):
        await router.request("chat", HI)
    assert await router.probe("chat") == {"a:m": "open"}  # too early: not probed
    clock.advance(31)
    assert await router.probe("chat") == {"a:m": "closed"}


async def test_stream_fails_over_while_nothing_was_sent() -> None:
    clock = FakeClock()
    a, b = ScriptedModel("a:m"), ScriptedModel("b:m")
    a.fail(ProviderAuthError("no", deployment="a:m"))
    router = make_router(clock, a, b)
    events = [e async for e in router.request_stream("chat", HI)]
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["from b:m"]
    assert isinstance(events[-1], ResponseDone)


async def test_stream_is_never_retried_after_tokens_reached_the_caller() -> None:
    clock = FakeClock()
    a, b = ScriptedModel("a:m"), ScriptedModel("b:m")
    a.outcomes.append(Outcome(unavailable(), tokens_before_error=2))
    router = make_router(clock, a, b)
    received: list[str] = []
    with pytest.raises(StreamInterrupted):
        async for event in router.request_stream("chat", HI):
            if isinstance(event, TextDelta):
                received.append(event.text)
    assert received == ["t0 ", "t1 "]
    assert (a.num_calls, b.num_calls) == (1, 0)
    assert clock.sleeps == []


async def test_weighted_round_robin_shares_traffic_by_weight() -> None:
    clock = FakeClock()
    a, b = ScriptedModel("a:m"), ScriptedModel("b:m")
    registry = ProviderRegistry(env={})
    registry.register(a)
    registry.register(b)
    router = Router(registry, clock=clock)
    router.add_group("chat", [("a:m", 3.0), ("b:m", 1.0)], strategy="weighted")
    picks = [(await router.request("chat", HI)).model for _ in range(8)]
    assert picks.count("a:m") == 6
    assert picks.count("b:m") == 2
    assert picks[:4].count("b:m") == 1  # interleaved, not a burst


async def test_least_latency_prefers_the_faster_deployment() -> None:
    clock = FakeClock()
    slow = ScriptedModel("a:slow", *[Outcome(takes_s=2.0)] * 5, clock=clock)
    fast = ScriptedModel("b:fast", *[Outcome(takes_s=0.2)] * 5, clock=clock)
    router = make_router(clock, slow, fast, strategy="least_latency")
    first = [(await router.request("chat", HI)).model for _ in range(2)]
    assert sorted(first) == ["a:slow", "b:fast"]  # each unmeasured one is tried once
    later = [(await router.request("chat", HI)).model for _ in range(3)]
    assert later == ["b:fast"] * 3


async def test_lowest_cost_prefers_the_cheaper_deployment() -> None:
    clock = FakeClock()
    dear, cheap = ScriptedModel("a:dear"), ScriptedModel("b:cheap")
    prices = PriceTable({"a:dear": Price(10, 30), "b:cheap": Price(0.1, 0.4)}, "test")
    router = make_router(clock, dear, cheap, strategy="lowest_cost", prices=prices)
    assert (await router.request("chat", HI)).model == "b:cheap"


async def test_complexity_policy_routes_hard_requests_to_the_large_group() -> None:
    small, large = ScriptedModel("s:small"), ScriptedModel("l:large")
    registry = ProviderRegistry(env={})
    registry.register(small)
    registry.register(large)
    settings = LLMSettings.model_validate(
        {
            "groups": {"fast": {"deployments": ["s:small"]}, "smart": {"deployments": ["l:large"]}},
            "complexity": {"small": "fast", "large": "smart"},
        }
    )
    router = Router.from_settings(settings, registry)
    assert (await router.request("auto", [Message.user("what is 2+2?")])).model == "s:small"
    hard = [Message.user("please refactor this module step by step")]
    assert (await router.request("auto", hard)).model == "l:large"
    tool = ToolDefinition("search")
    assert (await router.request("auto", HI, tools=[tool])).model == "l:large"
    code = [Message.user("```python\nprint(1)\n```")]
    assert (await router.request("auto", code)).model == "l:large"


async def test_unknown_group_names_the_known_ones() -> None:
    router = make_router(FakeClock(), ScriptedModel("a:m"))
    with pytest.raises(UnknownModel, match="groups: chat"):
        await router.request("nope", HI)
    # A full provider:model id works without a group.
    assert (await router.request("a:m", HI)).model == "a:m"


async def test_only_configured_names_are_served_not_ad_hoc_ids() -> None:
    router = make_router(FakeClock(), ScriptedModel("a:m"))
    router.policies["auto"] = router.policies.get("auto") or _always("chat")
    await router.request("a:m", HI)  # made a one-deployment group on the fly
    assert router.served_names() == ["auto", "chat"]
    assert router.is_served("chat") and router.is_served("auto")
    assert not router.is_served("a:m")
    assert (await router.request("auto", HI)).model == "a:m"


class _always:
    def __init__(self, group: str) -> None:
        self.group = group

    def choose(self, *args: object) -> str:
        return self.group


async def test_each_attempt_is_a_genai_span() -> None:
    configure_tracing(TracingSettings())
    RECENT_SPANS.clear()
    clock = FakeClock()
    a = ScriptedModel("a:m")
    a.fail(unavailable())
    router = make_router(clock, a)
    await router.request("chat", HI)
    spans = [s for s in RECENT_SPANS.spans() if s.name == "chat m"]
    assert len(spans) == 2
    failed, ok = spans
    assert failed.attributes is not None and ok.attributes is not None
    assert failed.attributes["error.type"] == "upstream_unavailable"
    assert ok.attributes["gen_ai.operation.name"] == "chat"
    assert ok.attributes["gen_ai.request.model"] == "m"
    assert ok.attributes["gen_ai.usage.input_tokens"] == 10
    assert ok.attributes["gen_ai.usage.output_tokens"] == 5
    assert ok.attributes["roost.llm.attempt"] == 1
