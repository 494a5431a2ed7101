"""Prometheus metrics of tool calls (served at /metrics once the tool layer is up)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)
TOOL_CALLS = Counter(
    "roost_tool_calls_total",
    "Tool calls by tool and outcome",
    ["tool", "status"],
    registry=REGISTRY,
)
TOOL_DURATION = Histogram(
    "roost_tool_call_seconds",
    "Time from a tool call's arrival to its result, refusals included",
    ["tool"],
    registry=REGISTRY,
)
