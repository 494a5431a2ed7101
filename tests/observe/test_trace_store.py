"""TraceStore: batches appended, traces summarised, filtered, paged, isolated, retained."""

from __future__ import annotations

from typing import Any

import pytest

from roost.errors import InvalidRequest
from roost.observe.span_record import SpanRecord
from roost.observe.trace_store import TraceFilter, TraceStore

T1, T2, T3 = "1" * 32, "2" * 32, "3" * 32


def span(
    trace_id: str,
    span_id: str,
    *,
    parent: str | None = None,
    tenant: str = "ten_a",
    start_us: int = 1_000_000,
    duration_us: int = 1000,
    status: str = "ok",
    **attributes: Any,
) -> SpanRecord:
    return SpanRecord(
        tenant_id=tenant, trace_id=trace_id, span_id=span_id, parent_span_id=parent,
        name=attributes.pop("name", f"span {span_id}"), kind="internal", start_us=start_us,
        duration_us=duration_us, status=status, status_message=None,
        attributes={k.replace("__", "."): v for k, v in attributes.items()},
    )  # fmt: skip


def chat(
    trace_id: str, span_id: str, parent: str, model: str, cost: float, **kw: Any
) -> SpanRecord:
    record = span(
        trace_id, span_id, parent=parent, name=f"chat {model}",
        gen_ai__operation__name="chat", gen_ai__request__model=model,
        gen_ai__usage__input_tokens=100, gen_ai__usage__output_tokens=20,
        roost__cost_usd=cost, **kw,
    )  # fmt: skip
    record.price(None)  # the explicit roost.cost_usd attribute
    return record


async def test_a_trace_in_two_batches_is_one_summary_and_one_tree(store: TraceStore) -> None:
    root = span(T1, "a" * 16, start_us=1_000_000, duration_us=50_000, name="POST /v1/runs")
    await store.write([chat(T1, "b" * 16, "a" * 16, "gpt-x", 0.002, start_us=1_010_000)])
    await store.write([root, chat(T1, "c" * 16, "a" * 16, "claude-y", 0.001, start_us=1_020_000)])

    page = await store.list_traces("ten_a", TraceFilter())
    (summary,) = page.traces
    assert summary["name"] == "POST /v1/runs"  # the earliest span names the trace
    assert summary["span_count"] == 3 and summary["duration_ms"] == 50.0
    assert summary["models"] == ["gpt-x", "claude-y"]
    assert summary["usage"]["input_tokens"] == 200
    assert summary["cost_usd"] == pytest.approx(0.003)

    trace = await store.get_trace("ten_a", T1)
    assert trace is not None
    (tree_root,) = trace["spans"]
    assert tree_root["name"] == "POST /v1/runs"
    assert [c["name"] for c in tree_root["children"]] == ["chat gpt-x", "chat claude-y"]
    assert tree_root["children"][0]["attributes"]["gen_ai.request.model"] == "gpt-x"


async def test_filters_each_narrow_the_list(store: TraceStore) -> None:
    await store.write([
        span(T1, "a" * 16, start_us=1_000_000, duration_us=5_000, roost__run_id="run_1",
             gen_ai__conversation__id="th_1", gen_ai__agent__name="calc"),
        chat(T1, "b" * 16, "a" * 16, "gpt-x", 0.5),
        span(T2, "c" * 16, start_us=2_000_000, duration_us=900_000, status="error"),
        span(T3, "d" * 16, start_us=3_000_000, duration_us=10),
    ])  # fmt: skip

    async def ids(**where: Any) -> list[str]:
        page = await store.list_traces("ten_a", TraceFilter(**where))
        return [t["trace_id"] for t in page.traces]

    assert await ids() == [T3, T2, T1]
    assert await ids(run_id="run_1") == [T1]
    assert await ids(thread_id="th_1") == [T1]
    assert await ids(agent="calc") == [T1]
    assert await ids(model="gpt-x") == [T1]
    assert await ids(model="gpt") == []  # whole model names only
    assert await ids(status="error") == [T2]
    assert await ids(status="ok") == [T3, T1]
    assert await ids(min_latency_ms=100) == [T2]
    assert await ids(min_cost_usd=0.1) == [T1]
    assert await ids(since_us=1_500_000, until_us=2_500_000) == [T2]


async def test_cursor_pages_through_every_trace_once(store: TraceStore) -> None:
    traces = [f"{i:032x}" for i in range(1, 8)]
    # Two traces share a start time: the cursor must not skip or repeat either.
    await store.write(
        [span(t, "a" * 16, start_us=1_000_000 + (i // 2)) for i, t in enumerate(traces)]
    )
    seen: list[str] = []
    cursor: str | None = None
    while True:
        page = await store.list_traces("ten_a", TraceFilter(), limit=3, cursor=cursor)
        seen += [t["trace_id"] for t in page.traces]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert sorted(seen) == sorted(traces) and len(seen) == len(traces)
    with pytest.raises(InvalidRequest):
        await store.list_traces("ten_a", TraceFilter(), cursor="not-a-cursor!")


async def test_another_tenant_sees_nothing(store: TraceStore) -> None:
    await store.write([span(T1, "a" * 16, tenant="ten_a")])
    assert (await store.list_traces("ten_b", TraceFilter())).traces == []
    assert await store.get_trace("ten_b", T1) is None
    # The same trace id under another tenant is another trace.
    await store.write([span(T1, "a" * 16, tenant="ten_b", name="theirs")])
    mine = await store.get_trace("ten_a", T1)
    assert mine is not None and mine["spans"][0]["name"] == "span " + "a" * 16


async def test_a_resent_batch_is_stored_once_when_deduplicated(store: TraceStore) -> None:
    batch = [span(T1, "a" * 16), span(T1, "b" * 16, parent="a" * 16)]
    assert await store.write(batch, deduplicate=True) == 2
    assert await store.write(batch, deduplicate=True) == 0
    (summary,) = (await store.list_traces("ten_a", TraceFilter())).traces
    assert summary["span_count"] == 2


async def test_retention_deletes_old_traces_then_the_oldest_over_budget(store: TraceStore) -> None:
    day = 86_400 * 1_000_000
    await store.write([
        span(T1, "a" * 16, start_us=1 * day),
        span(T2, "b" * 16, start_us=10 * day),
        span(T3, "c" * 16, start_us=11 * day),
        span(T1, "d" * 16, start_us=1 * day, tenant="ten_b"),
    ])  # fmt: skip
    deleted = await store.enforce_retention("ten_a", older_than_us=5 * day, max_bytes=10**9)
    assert deleted == 1
    left = [t["trace_id"] for t in (await store.list_traces("ten_a", TraceFilter())).traces]
    assert left == [T3, T2]
    assert await store.get_trace("ten_a", T1) is None
    assert await store.get_trace("ten_b", T1) is not None  # another tenant's policy

    one_trace = await store.bytes_used("ten_a") // 2
    assert await store.enforce_retention("ten_a", older_than_us=0, max_bytes=one_trace) == 1
    left = [t["trace_id"] for t in (await store.list_traces("ten_a", TraceFilter())).traces]
    assert left == [T3]  # the oldest went first
