"""Tables of the trace store.

``trace_spans`` is append-only: one row per span, never updated. ``trace_summaries`` is
derived from it (one row per tenant and trace, folded in as span batches arrive), so
listing and filtering traces reads one small row per trace instead of grouping spans.
Times are epoch microseconds: spans of one model call are often under a millisecond.
"""

from __future__ import annotations

from roost.storage import Migration

TRACE_MIGRATIONS = [
    Migration(
        component="traces",
        version=1,
        name="spans and trace summaries",
        common=[
            """CREATE TABLE trace_spans (
                tenant_id TEXT NOT NULL,
                trace_id TEXT NOT NULL,
                span_id TEXT NOT NULL,
                parent_span_id TEXT,
                name TEXT NOT NULL,
                kind TEXT NOT NULL,
                start_us BIGINT NOT NULL,
                duration_us BIGINT NOT NULL,
                status TEXT NOT NULL,
                status_message TEXT,
                operation TEXT,
                run_id TEXT,
                thread_id TEXT,
                agent TEXT,
                model TEXT,
                input_tokens BIGINT,
                output_tokens BIGINT,
                cached_tokens BIGINT,
                cost_nano BIGINT,
                attributes TEXT NOT NULL,
                events TEXT,
                size_bytes INTEGER NOT NULL,
                source TEXT NOT NULL
            )""",
            # Unique so that a re-sent OTLP batch stores each span once.
            "CREATE UNIQUE INDEX trace_spans_by_trace ON trace_spans (tenant_id, trace_id, span_id)",
            "CREATE INDEX trace_spans_by_time ON trace_spans (tenant_id, start_us)",
            "CREATE INDEX trace_spans_by_run ON trace_spans (tenant_id, run_id, start_us)",
            """CREATE TABLE trace_summaries (
                tenant_id TEXT NOT NULL,
                trace_id TEXT NOT NULL,
                name TEXT NOT NULL,
                start_us BIGINT NOT NULL,
                end_us BIGINT NOT NULL,
                span_count INTEGER NOT NULL,
                error_count INTEGER NOT NULL,
                run_id TEXT,
                thread_id TEXT,
                agent TEXT,
                models TEXT NOT NULL,
                input_tokens BIGINT NOT NULL,
                output_tokens BIGINT NOT NULL,
                cached_tokens BIGINT NOT NULL,
                cost_nano BIGINT NOT NULL,
                size_bytes BIGINT NOT NULL,
                PRIMARY KEY (tenant_id, trace_id)
            )""",
            "CREATE INDEX trace_summaries_by_time ON trace_summaries (tenant_id, start_us)",
            "CREATE INDEX trace_summaries_by_run ON trace_summaries (tenant_id, run_id)",
            "CREATE INDEX trace_summaries_by_thread ON trace_summaries (tenant_id, thread_id, start_us)",
            "CREATE INDEX trace_summaries_by_agent ON trace_summaries (tenant_id, agent, start_us)",
        ],
    ),
]
