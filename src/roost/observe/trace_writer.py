"""Writes finished spans to the trace store in batches, off the request path.

Threading: :meth:`TraceWriter.offer` is called where a span ends — any thread (sync graph
nodes run in a pool) — and only appends to a deque (atomic under the GIL). Everything
else runs on the kernel's event loop: one task wakes every ``flush_interval`` (or as
soon as a batch is full), turns spans into rows and writes each batch in one transaction.
A full queue drops new spans and counts them rather than hold up serving.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque

from opentelemetry.sdk.trace import ReadableSpan
from prometheus_client import Counter

from roost.observe.logging import get_logger
from roost.observe.metrics import REGISTRY
from roost.observe.span_record import CostOf, SpanRecord, from_sdk_span
from roost.observe.trace_policy import TracePolicies
from roost.observe.trace_store import TraceStore

log = get_logger("roost.observe")
SPANS_WRITTEN = Counter(
    "roost_trace_spans_written", "Spans written to the trace store", registry=REGISTRY
)
SPANS_DROPPED = Counter(
    "roost_trace_spans_dropped",
    "Spans not stored: queue full or write failed",
    ["reason"],
    registry=REGISTRY,
)


class TraceWriter:
    def __init__(
        self,
        store: TraceStore,
        policies: TracePolicies,
        *,
        cost_of: CostOf | None = None,
        batch_size: int = 512,
        flush_interval_s: float = 0.2,
        max_queue: int = 100_000,
    ) -> None:
        self.store = store
        self.policies = policies
        self.cost_of = cost_of
        self.batch_size = batch_size
        self.flush_interval_s = flush_interval_s
        self.max_queue = max_queue
        self._queue: deque[ReadableSpan] = deque()
        self._flushing = asyncio.Lock()
        self._wake = asyncio.Event()
        self._is_signalled = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def num_queued(self) -> int:
        return len(self._queue)

    def offer(self, span: ReadableSpan) -> None:
        """Queue a finished span (called from any thread; never blocks)."""
        if len(self._queue) >= self.max_queue:
            SPANS_DROPPED.labels("queue_full").inc()
            return
        self._queue.append(span)
        if len(self._queue) >= self.batch_size and not self._is_signalled and self._loop:
            self._is_signalled = True
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                self._loop.call_soon_threadsafe(self._wake.set)

    def start(self) -> None:
        """Start the flushing task on the running loop."""
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.create_task(self._run(), name="roost-trace-writer")

    async def close(self) -> None:
        """Stop the task and write what is queued."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.flush()
        self._loop = None

    async def flush(self) -> int:
        """Write every span queued so far; returns how many were stored."""
        written = 0
        async with self._flushing:
            while self._queue:
                batch = [
                    self._queue.popleft() for _ in range(min(self.batch_size, len(self._queue)))
                ]
                records = [r for r in map(self._record, batch) if r is not None]
                try:
                    written += await self.store.write(records)
                except Exception:
                    # Tracing must never take serving down: count the loss, keep going.
                    SPANS_DROPPED.labels("write_failed").inc(len(records))
                    log.exception("trace batch not written", spans=len(records))
        SPANS_WRITTEN.inc(written)
        return written

    def _record(self, span: ReadableSpan) -> SpanRecord | None:
        record = from_sdk_span(span)
        if record is None:
            return None
        if not self.policies.records_content(record.tenant_id):
            record.strip_content()
        elif self.policies.mask is not None:
            record.mask_content(self.policies.mask)
        record.price(self.cost_of)
        return record

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.flush_interval_s)
            self._wake.clear()
            self._is_signalled = False
            await self.flush()
