"""An SDK span as the trace store keeps it: attributes copied out of the SDK's read-only
view, sequences as lists, event attributes too; spans of no tenant are not kept."""

from __future__ import annotations

from opentelemetry.sdk.trace import TracerProvider

from roost.observe.span_record import from_sdk_span

TRACER = TracerProvider().get_tracer("tests.span_record")


def test_attributes_and_events_are_plain_copies_with_lists() -> None:
    with TRACER.start_as_current_span("chat m") as span:
        span.set_attribute("roost.tenant_id", "ten_1")
        span.set_attribute("gen_ai.response.finish_reasons", ("stop", "length"))
        span.set_attribute("gen_ai.usage.input_tokens", 7)
        span.add_event("retry", {"attempts": (1, 2), "reason": "429"})
    record = from_sdk_span(span)  # type: ignore[arg-type]
    assert record is not None and record.tenant_id == "ten_1"
    assert record.attributes == {
        "roost.tenant_id": "ten_1",
        "gen_ai.response.finish_reasons": ["stop", "length"],
        "gen_ai.usage.input_tokens": 7,
    }
    assert record.input_tokens == 7
    assert record.events[0]["name"] == "retry"
    assert record.events[0]["attributes"] == {"attempts": [1, 2], "reason": "429"}
    # The record's attributes are its own: masking content later never touches the span.
    record.attributes["gen_ai.usage.input_tokens"] = 0
    assert span.attributes is not None and span.attributes["gen_ai.usage.input_tokens"] == 7


def test_a_span_of_no_tenant_is_not_kept() -> None:
    with TRACER.start_as_current_span("GET /health") as span:
        span.set_attribute("http.route", "/health")
    assert from_sdk_span(span) is None  # type: ignore[arg-type]
