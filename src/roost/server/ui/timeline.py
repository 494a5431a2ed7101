"""A run's events as the rows of its timeline: nodes, model calls, tool calls, approvals.

Token events are folded into the text streamed so far, so a long answer is one row that
grows while the page polls, not a row per token.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from roost.agents.store import RunRecord


@dataclass(slots=True)
class Entry:
    kind: str  # node, model, tool_call, tool_result, approval, stream, start, end, other
    label: str
    detail: Any = None


def timeline_entries(events: list[dict[str, Any]], run: RunRecord) -> list[Entry]:
    entries: list[Entry] = []
    streamed: Entry | None = None
    for event in events:
        kind = str(event.get("event", ""))
        if kind == "token":
            if streamed is None:
                streamed = Entry("stream", "model output (streaming)", "")
                entries.append(streamed)
            streamed.detail = f"{streamed.detail}{event.get('text', '')}"
            continue
        streamed = None
        entries.append(_entry(kind, event))
    return entries


def _entry(kind: str, event: dict[str, Any]) -> Entry:
    if kind == "run_start":
        return Entry("start", "run started")
    if kind == "node":
        return Entry("node", f"node {event.get('node', '?')}")
    if kind == "message":
        message = event.get("message") or {}
        calls = message.get("tool_calls") or []
        label = f"model call → {len(calls)} tool call(s)" if calls else "model answer"
        return Entry("model", label, message.get("content") or None)
    if kind == "tool_call":
        return Entry("tool_call", f"tool call {event.get('tool', '?')}", event.get("arguments"))
    if kind == "tool_result":
        return Entry("tool_result", f"tool {event.get('tool', '?')}: {event.get('status', '?')}")
    if kind == "interrupt":
        value = (event.get("interrupt") or {}).get("value") or {}
        approvals = value.get("approvals") if isinstance(value, dict) else None
        if approvals:
            tools = ", ".join(str(a.get("tool")) for a in approvals)
            return Entry("approval", f"waiting for approval: {tools}", approvals)
        return Entry("approval", "interrupted", value)
    if kind == "run_end":
        run = event.get("run") or {}
        return Entry("end", f"run {run.get('status', 'ended')}")
    if kind == "route":
        return Entry("other", f"routed to {event.get('model', '?')}")
    return Entry("other", kind or "event", {k: v for k, v in event.items() if k != "event"})
