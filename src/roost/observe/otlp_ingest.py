"""OTLP/HTTP trace payloads (JSON or protobuf) from other applications, as span records.

Everything is validated before anything is stored: one malformed span refuses the whole
request (400), a payload naming another tenant refuses it (403). Numbers that OTLP/JSON
sends as strings (``intValue``, 64-bit times) are decoded, not dropped.
"""

from __future__ import annotations

import base64
import re
import zlib
from collections.abc import Mapping
from typing import Any

import orjson

from roost.errors import Forbidden, InvalidRequest, PayloadTooLarge
from roost.observe.span_record import TENANT_ATTRIBUTE, SpanRecord

MAX_SPANS = 50_000
_TENANT_KEYS = (TENANT_ATTRIBUTE, "tenant.id")
_HEX_TRACE = re.compile(r"^[0-9a-f]{32}$")
_HEX_SPAN = re.compile(r"^[0-9a-f]{16}$")
_KINDS = {0: "internal", 1: "internal", 2: "server", 3: "client", 4: "producer", 5: "consumer"}
_STATUSES = {0: "unset", 1: "ok", 2: "error"}


def decode_body(body: bytes, content_encoding: str | None, max_bytes: int) -> bytes:
    """The request body, inflated when gzip-compressed, refused (413) past ``max_bytes``."""
    if len(body) > max_bytes:
        raise PayloadTooLarge(f"OTLP payload exceeds {max_bytes} bytes")
    if (content_encoding or "").lower() != "gzip":
        return body
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        raw = inflater.decompress(body, max_bytes + 1)
    except zlib.error as exc:
        raise InvalidRequest(f"body is not valid gzip: {exc}") from exc
    if len(raw) > max_bytes or inflater.unconsumed_tail:
        raise PayloadTooLarge(f"OTLP payload inflates past {max_bytes} bytes")
    return raw


def parse_payload(body: bytes, content_type: str | None) -> dict[str, Any]:
    """An ``ExportTraceServiceRequest`` as OTLP/JSON-shaped data (ids as hex)."""
    kind = (content_type or "application/json").split(";")[0].strip().lower()
    if kind == "application/x-protobuf":
        return _from_protobuf(body)
    if kind != "application/json":
        raise InvalidRequest(
            "send OTLP as application/json or application/x-protobuf", param="content-type"
        )
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"body is not JSON: {exc}") from exc
    if not isinstance(payload, dict):
        raise InvalidRequest("an OTLP request is an object with resourceSpans")
    return payload


def to_records(payload: Mapping[str, Any], tenant_id: str) -> list[SpanRecord]:
    """Every span of ``payload`` for ``tenant_id``; raises before returning any on a bad one."""
    records: list[SpanRecord] = []
    for i, item in enumerate(_list(payload, "resourceSpans", "")):
        where = f"resourceSpans[{i}]"
        resource_spans = _obj(item, where)
        resource = _attributes(_obj(resource_spans.get("resource") or {}, where), where)
        _check_tenant(resource, tenant_id, where)
        for j, scope_item in enumerate(_list(resource_spans, "scopeSpans", where)):
            scope_where = f"{where}.scopeSpans[{j}]"
            scope_spans = _obj(scope_item, scope_where)
            for k, span in enumerate(_list(scope_spans, "spans", scope_where)):
                span_where = f"{scope_where}.spans[{k}]"
                records.append(_record(_obj(span, span_where), resource, tenant_id, span_where))
                if len(records) > MAX_SPANS:
                    raise PayloadTooLarge(f"more than {MAX_SPANS} spans in one request")
    return records


def _record(
    span: Mapping[str, Any], resource: dict[str, Any], tenant_id: str, where: str
) -> SpanRecord:
    trace_id = _id(span.get("traceId"), _HEX_TRACE, f"{where}.traceId")
    span_id = _id(span.get("spanId"), _HEX_SPAN, f"{where}.spanId")
    parent = span.get("parentSpanId") or None
    parent_id = _id(parent, _HEX_SPAN, f"{where}.parentSpanId") if parent else None
    name = span.get("name")
    if not isinstance(name, str) or not name:
        raise InvalidRequest("a span needs a name", param=f"{where}.name")
    start = _int(span.get("startTimeUnixNano"), f"{where}.startTimeUnixNano")
    end = _int(span.get("endTimeUnixNano", start), f"{where}.endTimeUnixNano")
    if start <= 0 or end < start:
        raise InvalidRequest("span times must be positive and end after start", param=where)
    attributes = _attributes(span, where)
    _check_tenant(attributes, tenant_id, where)
    status = _obj(span.get("status") or {}, f"{where}.status")
    message = status.get("message")
    resource_attributes = {f"resource.{k}": v for k, v in resource.items()}
    events = [
        _event(_obj(e, f"{where}.events"), f"{where}.events") for e in _list(span, "events", where)
    ]
    return SpanRecord(
        tenant_id=tenant_id,
        trace_id=trace_id,
        span_id=span_id,
        parent_span_id=parent_id,
        name=name,
        kind=_KINDS.get(_enum(span.get("kind", 0), "SPAN_KIND_", f"{where}.kind"), "internal"),
        start_us=start // 1000,
        duration_us=(end - start) // 1000,
        status=_STATUSES.get(_enum(status.get("code", 0), "STATUS_CODE_", where), "unset"),
        status_message=message if isinstance(message, str) and message else None,
        attributes={**resource_attributes, **attributes, TENANT_ATTRIBUTE: tenant_id},
        events=events,
        source="otlp",
    )


def _event(event: Mapping[str, Any], where: str) -> dict[str, Any]:
    return {
        "name": str(event.get("name", "")),
        "time_us": _int(event.get("timeUnixNano", 0), f"{where}.timeUnixNano") // 1000,
        "attributes": _attributes(event, where),
    }


def _check_tenant(attributes: Mapping[str, Any], tenant_id: str, where: str) -> None:
    for key in _TENANT_KEYS:
        named = attributes.get(key)
        if named is not None and named != tenant_id:
            raise Forbidden(f"{where} names tenant {named!r}; this key may write only its own")


def _attributes(holder: Mapping[str, Any], where: str) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for item in _list(holder, "attributes", where):
        item = _obj(item, f"{where}.attributes")
        key = item.get("key")
        if not isinstance(key, str) or not key:
            raise InvalidRequest("an attribute needs a key", param=f"{where}.attributes")
        value = any_value(item.get("value") or {}, f"{where}.attributes.{key}")
        if value is not None:
            found[key] = value
    return found


def any_value(value: Any, where: str) -> Any:
    """An OTLP ``AnyValue`` as plain data; ``intValue`` may be a string (OTLP/JSON)."""
    if not isinstance(value, dict):
        raise InvalidRequest("an attribute value is an AnyValue object", param=where)
    if "stringValue" in value:
        return str(value["stringValue"])
    if "intValue" in value:
        return _int(value["intValue"], where)
    if "doubleValue" in value:
        try:
            return float(value["doubleValue"])
        except (TypeError, ValueError) as exc:
            raise InvalidRequest("doubleValue is not a number", param=where) from exc
    if "boolValue" in value:
        if not isinstance(value["boolValue"], bool):
            raise InvalidRequest("boolValue is not a boolean", param=where)
        return value["boolValue"]
    if "arrayValue" in value:
        items = _list(_obj(value["arrayValue"], where), "values", where)
        return [any_value(v, where) for v in items]
    if "kvlistValue" in value:
        return _attributes({"attributes": _list(_obj(value["kvlistValue"], where), "values", where)},
                           where)  # fmt: skip
    if "bytesValue" in value:
        return str(value["bytesValue"])
    return None


def _id(value: Any, pattern: re.Pattern[str], where: str) -> str:
    text = value.lower() if isinstance(value, str) else ""
    if not pattern.match(text) or not text.strip("0"):
        raise InvalidRequest("not a non-zero hex id of the right length", param=where)
    return text


def _int(value: Any, where: str) -> int:
    if isinstance(value, bool):
        raise InvalidRequest("expected an integer", param=where)
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"-?[0-9]{1,20}", value):
        return int(value)
    raise InvalidRequest("expected an integer (or a string of digits)", param=where)


def _enum(value: Any, prefix: str, where: str) -> int:
    if isinstance(value, str) and value.startswith(prefix):
        names = {"UNSPECIFIED": 0, "UNSET": 0, "INTERNAL": 1, "SERVER": 2, "CLIENT": 3,
                 "PRODUCER": 4, "CONSUMER": 5, "OK": 1, "ERROR": 2}  # fmt: skip
        found = names.get(value.removeprefix(prefix))
        if found is not None:
            return found
    return _int(value, where)


def _list(holder: Mapping[str, Any], key: str, where: str) -> list[Any]:
    value = holder.get(key, [])
    if value is None:
        return []
    if not isinstance(value, list):
        raise InvalidRequest(f"{key} must be a list", param=f"{where}.{key}".lstrip("."))
    return value


def _obj(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidRequest("expected an object", param=where or None)
    return value


def _from_protobuf(body: bytes) -> dict[str, Any]:
    from google.protobuf.json_format import MessageToDict
    from google.protobuf.message import DecodeError
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    request = ExportTraceServiceRequest()
    try:
        request.ParseFromString(body)
    except DecodeError as exc:
        raise InvalidRequest(f"body is not an ExportTraceServiceRequest: {exc}") from exc
    payload: dict[str, Any] = MessageToDict(request)
    # MessageToDict writes bytes fields as base64; OTLP/JSON writes ids as hex.
    for resource_spans in payload.get("resourceSpans", []):
        for scope_spans in resource_spans.get("scopeSpans", []):
            for span in scope_spans.get("spans", []):
                for key in ("traceId", "spanId", "parentSpanId"):
                    if span.get(key):
                        span[key] = base64.b64decode(span[key]).hex()
    return payload
