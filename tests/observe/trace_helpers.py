"""Reading traces back through the API: flatten a span tree, walk to a span's ancestors."""

from __future__ import annotations

from typing import Any

import httpx

CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"
TRACEPARENT = f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"


def flatten(spans: list[dict[str, Any]]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for span in spans:
        found.append(span)
        found += flatten(span["children"])
    return found


def named(spans: list[dict[str, Any]], prefix: str) -> list[dict[str, Any]]:
    return [s for s in spans if s["name"].startswith(prefix)]


def ancestors(span: dict[str, Any], spans: list[dict[str, Any]]) -> list[str]:
    """Names of the span's ancestors, nearest first."""
    by_id = {s["span_id"]: s for s in spans}
    names = []
    parent = by_id.get(span["parent_span_id"] or "")
    while parent is not None:
        names.append(parent["name"])
        parent = by_id.get(parent["parent_span_id"] or "")
    return names


async def only_trace(client: httpx.AsyncClient, **filters: str) -> dict[str, Any]:
    """The one trace matching ``filters`` (asserting there is exactly one), with its spans."""
    listed = await client.get("/v1/traces", params=filters)
    assert listed.status_code == 200, listed.text
    data = listed.json()["data"]
    assert len(data) == 1, [(t["name"], t["span_count"], t["trace_id"]) for t in data]
    (summary,) = data
    detail = await client.get(f"/v1/traces/{summary['trace_id']}")
    assert detail.status_code == 200, detail.text
    trace: dict[str, Any] = detail.json()
    return trace
