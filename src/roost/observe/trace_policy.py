"""Per-tenant tracing policy: whether message content is kept, and for how long traces are.

Configured under ``[tracing]`` with overrides in ``[tracing.tenants.<name or id>]``;
names are resolved to ids when the kernel opens (and again by the retention job, so a
tenant created later picks up its override).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from roost.config import TracingSettings


@dataclass(frozen=True, slots=True)
class TracePolicy:
    record_content: bool
    retention_days: int
    retention_bytes: int


class TracePolicies:
    def __init__(self, settings: TracingSettings) -> None:
        self.settings = settings
        self.default = TracePolicy(
            settings.record_content, settings.retention_days, settings.retention_bytes
        )
        self._by_id: dict[str, TracePolicy] = {}
        # (tenant id, text) -> text with personal data masked: the PII guardrail's, set by
        # the kernel; content a tenant keeps passes through it before it is stored.
        self.mask: Callable[[str, str], str] | None = None
        self.learn((key, key) for key in settings.tenants)

    def learn(self, tenants: Iterable[tuple[str, str]]) -> None:
        """Map ``(id, name)`` pairs onto the overrides configured by id or by name."""
        for tenant_id, name in tenants:
            override = self.settings.tenants.get(tenant_id) or self.settings.tenants.get(name)
            if override is None:
                continue
            self._by_id[tenant_id] = TracePolicy(
                self.default.record_content
                if override.record_content is None
                else override.record_content,
                override.retention_days or self.default.retention_days,
                self.default.retention_bytes
                if override.retention_bytes is None
                else override.retention_bytes,
            )

    def of(self, tenant_id: str) -> TracePolicy:
        return self._by_id.get(tenant_id, self.default)

    def records_content(self, tenant_id: str) -> bool:
        return self.of(tenant_id).record_content
