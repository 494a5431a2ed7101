"""Per-tenant command limits on the real sandbox: concurrent commands and the disk quota."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from roost.tools.isolation import detect_isolation
from roost.tools.paths import Workspace
from roost.tools.sandbox import Sandbox, SandboxPolicy
from roost.tools.tenant_limits import TenantCommandLimits, TenantLimitExceeded, disk_usage

ISOLATION = detect_isolation()
pytestmark = pytest.mark.skipif(ISOLATION.jail is None, reason="needs the bubblewrap jail")
MiB = 1024 * 1024
SLEEP = ["python3", "-c", "import time; time.sleep(60)"]


def workspace_of(tmp_path: Path, tenant: str) -> Workspace:
    return Workspace(tmp_path / tenant / "agent", quota_root=tmp_path / tenant)


async def test_a_tenant_at_its_cap_is_refused_while_others_run(tmp_path: Path) -> None:
    limits = TenantCommandLimits(max_concurrent=2, disk_quota_bytes=None)
    sandbox = Sandbox(SandboxPolicy(timeout_s=1.5), limits=limits)
    a, b = workspace_of(tmp_path, "ten_a"), workspace_of(tmp_path, "ten_b")

    def run(workspace: Workspace, tenant: str, argv: list[str]) -> asyncio.Task[object]:
        return asyncio.ensure_future(
            sandbox.run(argv, workspace.root, workspace_root=workspace.root, tenant_id=tenant)
        )

    busy = [run(a, "ten_a", SLEEP), run(a, "ten_a", SLEEP)]
    await asyncio.sleep(0)  # both tasks enter run() and take their slots before awaiting
    assert limits.num_running["ten_a"] == 2
    with pytest.raises(TenantLimitExceeded, match="already runs 2 commands"):
        await run(a, "ten_a", ["true"])
    other = await run(b, "ten_b", ["true"])
    assert other.ok  # type: ignore[attr-defined]
    await asyncio.gather(*busy)
    assert limits.num_running == {}
    again = await run(a, "ten_a", ["true"])
    assert again.ok  # type: ignore[attr-defined]


async def test_disk_quota_kills_a_filling_command_and_refuses_the_next(tmp_path: Path) -> None:
    limits = TenantCommandLimits(max_concurrent=None, disk_quota_bytes=8 * MiB)
    sandbox = Sandbox(SandboxPolicy(timeout_s=30), limits=limits)
    mine = workspace_of(tmp_path, "ten_a")
    sibling = Workspace(tmp_path / "ten_a" / "other-agent")
    (sibling.root / "old.bin").write_bytes(b"x" * (2 * MiB))  # counts: same tenant
    # Many 1 MiB files (each under RLIMIT_FSIZE), paced so the watcher is what stops them.
    fill = (
        "import time\n"
        "for i in range(200):\n"
        "    open(f'f{i}', 'wb').write(b'x' * 1048576); time.sleep(0.02)\n"
    )
    result = await sandbox.run(
        ["python3", "-c", fill], mine.root, workspace_root=mine.root, quota_root=mine.quota_root
    )
    assert result.disk_quota_exceeded and not result.ok and result.signal == "SIGKILL"
    assert disk_usage(mine.quota_root) < 40 * MiB  # stopped long before 200 MiB
    with pytest.raises(TenantLimitExceeded, match="workspace_quota_mb"):
        await sandbox.run(["true"], mine.root, workspace_root=mine.root, quota_root=mine.quota_root)


async def test_one_file_may_not_outgrow_what_is_left_of_the_quota(tmp_path: Path) -> None:
    limits = TenantCommandLimits(max_concurrent=None, disk_quota_bytes=4 * MiB)
    sandbox = Sandbox(SandboxPolicy(timeout_s=30), limits=limits)
    mine = workspace_of(tmp_path, "ten_a")
    result = await sandbox.run(
        ["python3", "-c", "open('big', 'wb').write(b'x' * (64 << 20))"],
        mine.root,
        workspace_root=mine.root,
        quota_root=mine.quota_root,
    )
    assert result.exit_code != 0
    assert (mine.root / "big").stat().st_size <= 4 * MiB
