"""What one tenant's commands may take of the machine: concurrent slots and disk space.

Both are per process: the concurrency cap counts this process's running commands of a
tenant (commands run where their tool call runs); the disk quota is measured on the
tenant's directory of workspaces, so it holds whichever process wrote the bytes.

Disk usage is measured by walking the tenant's directory (no file-system quotas needed):
before a command starts (refused when the tenant is at its quota), while it runs (killed
when it goes over) and through ``RLIMIT_FSIZE`` no single file may outgrow what is left.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from roost.tools.base import ToolFailure


class TenantLimitExceeded(ToolFailure):
    """A tenant is at its cap of running commands or over its disk quota."""

    def __init__(self, message: str) -> None:
        super().__init__(message, type="tenant_limit")


@dataclass(slots=True)
class TenantCommandLimits:
    """Per-tenant caps of this process; ``None`` disables a cap."""

    max_concurrent: int | None = 4
    disk_quota_bytes: int | None = 1024 * 1024 * 1024
    num_running: Counter[str] = field(default_factory=Counter)

    @contextmanager
    def slot(self, tenant_id: str) -> Iterator[None]:
        """Hold one of the tenant's command slots; refuse at once when none is free."""
        if self.max_concurrent is not None and self.num_running[tenant_id] >= self.max_concurrent:
            raise TenantLimitExceeded(
                f"this tenant already runs {self.num_running[tenant_id]} commands"
                f" (tools.max_commands_per_tenant = {self.max_concurrent}); retry when one ends"
            )
        self.num_running[tenant_id] += 1
        try:
            yield
        finally:
            self.num_running[tenant_id] -= 1
            if self.num_running[tenant_id] <= 0:
                del self.num_running[tenant_id]

    def bytes_left(self, quota_root: Path) -> int | None:
        """Bytes the tenant may still write; :class:`TenantLimitExceeded` when none."""
        if self.disk_quota_bytes is None:
            return None
        left = self.disk_quota_bytes - disk_usage(quota_root)
        if left <= 0:
            raise TenantLimitExceeded(
                f"the tenant's workspaces hold {disk_usage(quota_root)} bytes, at or over"
                f" tools.workspace_quota_mb ({self.disk_quota_bytes} bytes); delete files first"
            )
        return left

    def is_over_quota(self, quota_root: Path) -> bool:
        return self.disk_quota_bytes is not None and disk_usage(quota_root) > self.disk_quota_bytes


def disk_usage(root: Path) -> int:
    """Bytes allocated under ``root`` (blocks, so sparse files count what they take)."""
    total = 0
    for directory, names, files in os.walk(root):
        for name in (*names, *files):
            try:
                total += os.lstat(os.path.join(directory, name)).st_blocks * 512
            except OSError:
                continue  # removed while walking
    return total
