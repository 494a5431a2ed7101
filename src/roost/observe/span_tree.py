"""Stored spans as a tree: each span with its children, in start order."""

from __future__ import annotations

from typing import Any

import orjson

from roost.storage import Row


def span_json(row: Row) -> dict[str, Any]:
    return {
        "span_id": row["span_id"],
        "parent_span_id": row["parent_span_id"],
        "name": row["name"],
        "kind": row["kind"],
        "start_time_us": int(row["start_us"]),
        "duration_ms": int(row["duration_us"]) / 1000,
        "status": row["status"],
        "status_message": row["status_message"],
        "cost_usd": None if row["cost_nano"] is None else int(row["cost_nano"]) / 1e9,
        "attributes": orjson.loads(row["attributes"]),
        "events": orjson.loads(row["events"]) if row["events"] else [],
        "source": row["source"],
        "children": [],
    }


def span_tree(rows: list[Row]) -> list[dict[str, Any]]:
    """Root spans (no parent, or a parent this store never saw: the caller's, another
    service's) with their descendants nested under ``children``."""
    spans = [span_json(r) for r in rows]
    by_id = {s["span_id"]: s for s in spans}
    roots: list[dict[str, Any]] = []
    for span in spans:
        parent = by_id.get(span["parent_span_id"] or "")
        (parent["children"] if parent is not None else roots).append(span)
    return roots
