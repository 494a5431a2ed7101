"""The limits that apply to a tenant and its keys: defaults, overlaid by the tenant's
entry in ``[limits.tenants]``, overlaid by the override set at run time. A value of 0
means no limit."""

from __future__ import annotations

from dataclasses import dataclass

from roost.config import LimitOverride, LimitsSettings, LimitValues

_FIELDS = ("requests_per_minute", "tokens_per_minute", "concurrency")


@dataclass(frozen=True, slots=True)
class ScopeLimits:
    """Resolved limits of one scope; 0 is no limit."""

    requests_per_minute: int = 0
    tokens_per_minute: int = 0
    concurrency: int = 0

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in _FIELDS}


@dataclass(frozen=True, slots=True)
class TenantPolicy:
    tenant: ScopeLimits
    key: ScopeLimits  # applies to each key of the tenant on its own

    def as_dict(self) -> dict[str, dict[str, int]]:
        return {"tenant": self.tenant.as_dict(), "key": self.key.as_dict()}


def _overlay(values: list[LimitValues]) -> ScopeLimits:
    resolved: dict[str, int] = {}
    for layer in values:
        for name in _FIELDS:
            value = getattr(layer, name)
            if value is not None:
                resolved[name] = value
    return ScopeLimits(**resolved)


def resolve(
    settings: LimitsSettings, tenant_id: str, runtime: LimitOverride | None = None
) -> TenantPolicy:
    layers = [settings.tenants.get(tenant_id), runtime]
    present = [layer for layer in layers if layer is not None]
    return TenantPolicy(
        _overlay([settings.tenant, *(o.tenant for o in present)]),
        _overlay([settings.key, *(o.key for o in present)]),
    )
