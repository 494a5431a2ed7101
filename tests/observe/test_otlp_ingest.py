"""OTLP/HTTP ingestion at /v1/otel/v1/traces: JSON and protobuf (encoded by the official
SDK's exporter code) land in the caller's traces; bad payloads are refused whole."""

from __future__ import annotations

import gzip
import json
from typing import Any

import httpx
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

from tests.server.conftest import AppFactory

URL = "/v1/otel/v1/traces"
TRACE = "5b8efff798038103d269b633813fc60c"


def attr(key: str, **value: Any) -> dict[str, Any]:
    return {"key": key, "value": value}


def otlp_json(
    *spans: dict[str, Any], resource: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    return {"resourceSpans": [{
        "resource": {"attributes": resource or [attr("service.name", stringValue="shop")]},
        "scopeSpans": [{"scope": {"name": "shop.genai"}, "spans": list(spans)}],
    }]}  # fmt: skip


def genai_span(span_id: str = "eee19b7ec3c1b174", **changes: Any) -> dict[str, Any]:
    span = {
        "traceId": TRACE, "spanId": span_id, "name": "chat gpt-4o", "kind": 3,
        "startTimeUnixNano": "1700000000000000000", "endTimeUnixNano": "1700000000250000000",
        "attributes": [
            attr("gen_ai.operation.name", stringValue="chat"),
            attr("gen_ai.request.model", stringValue="gpt-4o"),
            attr("gen_ai.usage.input_tokens", intValue="1200"),  # OTLP/JSON: int64 as string
            attr("gen_ai.usage.output_tokens", intValue=34),
            attr("gen_ai.request.temperature", doubleValue=0.2),
        ],
        "status": {"code": "STATUS_CODE_OK"},
    }  # fmt: skip
    span.update(changes)
    return span


async def stored(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = (await client.get("/v1/traces")).json()["data"]
    return data


async def test_json_spans_land_with_string_token_counts_decoded(
    make_app: AppFactory, auth: dict[str, str]
) -> None:
    async with make_app() as (_, client):
        client.headers.update(auth)
        sent = await client.post(URL, json=otlp_json(genai_span()))
        assert sent.status_code == 200, sent.text
        assert sent.json() == {}
        again = await client.post(URL, json=otlp_json(genai_span()))  # a retried export
        assert again.status_code == 200
        (summary,) = await stored(client)
        trace = (await client.get(f"/v1/traces/{TRACE}")).json()

    assert summary["span_count"] == 1  # stored once
    assert summary["usage"]["input_tokens"] == 1200 and summary["usage"]["output_tokens"] == 34
    assert summary["models"] == ["gpt-4o"] and summary["duration_ms"] == 250.0
    (span,) = trace["spans"]
    assert span["kind"] == "client" and span["status"] == "ok" and span["source"] == "otlp"
    assert span["attributes"]["gen_ai.usage.input_tokens"] == 1200
    assert span["attributes"]["resource.service.name"] == "shop"
    assert span["cost_usd"] > 0  # priced from the shipped table like Roost's own calls


class Collected(SpanExporter):
    def __init__(self) -> None:
        self.spans: list[ReadableSpan] = []

    def export(self, spans: Any) -> SpanExportResult:
        self.spans.extend(spans)
        return SpanExportResult.SUCCESS


def sdk_spans() -> list[ReadableSpan]:
    """Spans made by another application's OpenTelemetry SDK (its own provider)."""
    collected = Collected()
    provider = TracerProvider(resource=Resource.create({"service.name": "other-app"}))
    provider.add_span_processor(SimpleSpanProcessor(collected))
    tracer = provider.get_tracer("other")
    with (
        tracer.start_as_current_span("invoke_agent helper"),
        tracer.start_as_current_span("chat claude") as span,
    ):
        span.set_attribute("gen_ai.operation.name", "chat")
        span.set_attribute("gen_ai.request.model", "claude-haiku-4-5")
        span.set_attribute("gen_ai.usage.input_tokens", 10)
    provider.shutdown()
    return collected.spans


async def test_protobuf_from_the_sdk_encoder_keeps_the_tree(
    make_app: AppFactory, auth: dict[str, str]
) -> None:
    spans = sdk_spans()
    body = encode_spans(spans).SerializeToString()
    trace_id = f"{spans[0].context.trace_id:032x}"
    async with make_app() as (_, client):
        client.headers.update(auth)
        sent = await client.post(
            URL, content=gzip.compress(body),
            headers={"content-type": "application/x-protobuf", "content-encoding": "gzip"},
        )  # fmt: skip
        assert sent.status_code == 200, sent.text
        assert sent.headers["content-type"] == "application/x-protobuf"
        trace = (await client.get(f"/v1/traces/{trace_id}")).json()
    (root,) = trace["spans"]
    assert root["name"] == "invoke_agent helper"
    (child,) = root["children"]
    assert child["attributes"]["gen_ai.usage.input_tokens"] == 10
    assert child["attributes"]["resource.service.name"] == "other-app"


async def test_malformed_payloads_are_refused_and_nothing_is_stored(
    make_app: AppFactory, auth: dict[str, str]
) -> None:
    bad_token_count = genai_span("aaaaaaaaaaaaaaaa")
    bad_token_count["attributes"] = [attr("gen_ai.usage.input_tokens", intValue="lots")]
    async with make_app() as (_, client):
        client.headers.update(auth)
        cases = [
            (b"{not json", "application/json"),
            (b"\x0a\xff\xff", "application/x-protobuf"),
            (b"<xml/>", "text/xml"),
        ]
        for body, kind in cases:
            refused = await client.post(URL, content=body, headers={"content-type": kind})
            assert refused.status_code == 400, (kind, refused.text)
            assert refused.headers["content-type"] == "application/problem+json"
        for payload in (
            otlp_json(genai_span(), bad_token_count),  # one bad span spoils the batch
            otlp_json(genai_span(traceId="xyz")),
            otlp_json(genai_span(spanId="0000000000000000")),
            otlp_json(genai_span(endTimeUnixNano="1")),
            {"resourceSpans": "no"},
            {"resourceSpans": [1]},
            {"resourceSpans": [{"scopeSpans": ["x"]}]},
            {"resourceSpans": [{"scopeSpans": [{"spans": [7]}]}]},
        ):
            refused = await client.post(URL, json=payload)
            assert refused.status_code == 400, refused.text
        assert await stored(client) == []


async def test_oversized_payloads_get_413(make_app: AppFactory, auth: dict[str, str]) -> None:
    async with make_app({"ROOST_TRACING__MAX_INGEST_BYTES": "2048"}) as (_, client):
        client.headers.update(auth)
        big = otlp_json(*(genai_span(f"{i + 1:016x}") for i in range(30)))
        assert (await client.post(URL, json=big)).status_code == 413
        bomb = gzip.compress(b"{" + b" " * 100_000 + b"}")  # small on the wire, not inflated
        inflated = await client.post(
            URL, content=bomb,
            headers={"content-type": "application/json", "content-encoding": "gzip"},
        )  # fmt: skip
        assert inflated.status_code == 413
        assert await stored(client) == []


async def test_a_payload_for_another_tenant_is_forbidden(
    make_app: AppFactory, auth: dict[str, str]
) -> None:
    async with make_app() as (app, client):
        client.headers.update(auth)
        other = await app.state.platform.tenants.create("acme")
        claims_other = otlp_json(
            genai_span(), resource=[attr("roost.tenant_id", stringValue=other.id)]
        )
        refused = await client.post(URL, json=claims_other)
        assert refused.status_code == 403
        span_claims = genai_span()
        span_claims["attributes"].append(attr("tenant.id", stringValue=other.id))
        assert (await client.post(URL, json=otlp_json(span_claims))).status_code == 403
        assert await stored(client) == []
        _, other_key = await app.state.platform.api_keys.create(other.id, "acme")
        theirs = {"Authorization": f"Bearer {other_key}"}
        assert (await client.post(URL, json=claims_other, headers=theirs)).status_code == 200
        assert await stored(client) == []  # their span is theirs alone
        listed = (await client.get("/v1/traces", headers=theirs)).json()["data"]
        assert [t["trace_id"] for t in listed] == [TRACE]


async def test_a_compressed_payload_is_held_to_the_json_rules_once_inflated(
    make_app: AppFactory, auth: dict[str, str]
) -> None:
    async with make_app() as (_, client):
        client.headers.update(auth)
        payload = otlp_json(genai_span("00000000000000aa"))
        nested: Any = []
        for _ in range(100):  # deeper than server.max_json_depth (64)
            nested = [nested]
        payload["extra"] = nested
        response = await client.post(
            URL, content=gzip.compress(json.dumps(payload).encode()),
            headers={"content-type": "application/json", "content-encoding": "gzip"},
        )  # fmt: skip
        assert response.status_code == 400
        assert "deeper than" in response.text
        assert await stored(client) == []
