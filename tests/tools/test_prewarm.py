"""Jails prepared while a command's approval is pending: fail-closed in every outcome.

A prepared jail runs nothing until the approved call releases it; a denial, an expired
approval, a mismatch or a shutdown tears it down with nothing run; an approval runs
exactly the approved argv in it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from roost.config import load_settings
from roost.platform import Platform
from roost.tools.executor import ToolCall
from roost.tools.permissions import Caller
from roost.tools.sandbox import Sandbox, SandboxPolicy
from roost.tools.service import ToolService, workspace_root

# Writes its arguments to ran.txt and prints them: proof of what ran, and that it ran.
RECORD = "import pathlib, sys; a = sys.argv[1:]; pathlib.Path('ran.txt').write_text(' '.join(a)); print(' '.join(a))"


def _processes_with(tag: str) -> list[int]:
    """Pids whose command line mentions ``tag`` (a prepared jail names its ticket)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if tag.encode() in cmdline:
            found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    path = tmp_path / "ws"
    (path / "sub").mkdir(parents=True)
    return path


@pytest.fixture
def sandbox() -> Sandbox:
    return Sandbox(SandboxPolicy(timeout_s=30))


async def test_a_prepared_jail_waits_and_then_runs_exactly_the_released_argv(
    sandbox: Sandbox, root: Path
) -> None:
    argv = ["python3", "-c", RECORD, "hello", "a b", "$(id)"]
    assert await sandbox.prepare(argv, root, workspace_root=root, ticket="apr_one", tenant_id="t1")
    waiting = sandbox.prepared.pid("apr_one")
    assert waiting is not None and _alive(waiting), "the jail waits for its command"
    assert not (root / "ran.txt").exists()  # nothing of the command has run

    result = await sandbox.run(argv, root, workspace_root=root, tenant_id="t1", ticket="apr_one")

    assert result.ok and result.prepared and result.isolation == "bubblewrap", result
    assert result.stdout.strip() == "hello a b $(id)"
    assert (root / "ran.txt").read_text() == "hello a b $(id)"
    assert "apr_one" not in sandbox.prepared
    assert not _alive(waiting) and not _processes_with("roost-prepared:apr_one")


async def test_a_discarded_jail_runs_nothing_and_leaves_no_process(
    sandbox: Sandbox, root: Path
) -> None:
    argv = ["python3", "-c", RECORD, "never"]
    assert await sandbox.prepare(argv, root, workspace_root=root, ticket="apr_two")
    pid = sandbox.prepared.pid("apr_two")
    assert pid is not None and _alive(pid)

    await sandbox.prepared.discard("apr_two", "another-tenant")  # not theirs: untouched
    assert _alive(pid) and "apr_two" in sandbox.prepared
    await sandbox.prepared.discard("apr_two", None)

    assert not _alive(pid) and not _processes_with("roost-prepared:apr_two")
    assert not (root / "ran.txt").exists()


async def test_the_launcher_runs_nothing_when_its_pipe_closes_without_an_order(
    sandbox: Sandbox, root: Path
) -> None:
    # What happens when the server dies: the kernel closes the pipe's write end.
    argv = ["python3", "-c", RECORD, "never"]
    assert await sandbox.prepare(argv, root, workspace_root=root, ticket="apr_eof")
    ready = sandbox.prepared.take("apr_eof", None)
    assert ready is not None
    ready._close_control()
    code = await ready.process.wait()
    await ready.tear_down()
    assert code == 125
    assert not (root / "ran.txt").exists()
    assert not _processes_with("roost-prepared:apr_eof")


async def test_a_jail_built_for_another_directory_is_torn_down_and_the_command_starts_cold(
    sandbox: Sandbox, root: Path
) -> None:
    argv = ["python3", "-c", RECORD, "here"]
    assert await sandbox.prepare(argv, root, workspace_root=root, ticket="apr_cwd")
    result = await sandbox.run(argv, root / "sub", workspace_root=root, ticket="apr_cwd")
    assert result.ok and not result.prepared
    assert (root / "sub" / "ran.txt").read_text() == "here"
    assert not (root / "ran.txt").exists()
    assert not _processes_with("roost-prepared:apr_cwd")


async def test_refused_commands_are_not_prepared_and_the_cap_is_kept(root: Path) -> None:
    from roost.tools.prewarm import PreparedJails
    from roost.tools.sandbox import CommandRefused

    sandbox = Sandbox(SandboxPolicy(), prepared=PreparedJails(max_per_tenant=1))
    with pytest.raises(CommandRefused):
        await sandbox.prepare(["bash", "-c", "true"], root, workspace_root=root, ticket="apr_x")
    assert await sandbox.prepare(["true"], root, workspace_root=root, ticket="a1", tenant_id="t")
    assert not await sandbox.prepare(
        ["true"], root, workspace_root=root, ticket="a2", tenant_id="t"
    )
    assert await sandbox.prepare(["true"], root, workspace_root=root, ticket="b1", tenant_id="u")
    await sandbox.prepared.close()
    assert len(sandbox.prepared) == 0
    assert not _processes_with("roost-prepared:")


# -- through the executor: the approval decides ---------------------------------------


@pytest.fixture
async def gated(tmp_path: Path) -> AsyncIterator[tuple[ToolService, Caller, Path]]:
    """A tool layer where running a command needs an approval."""
    settings = load_settings(
        env={"ROOST_HOME": str(tmp_path / "home"), "ROOST_TOOLS__APPROVAL_RISK": "execute"}
    )
    platform = await Platform.open(settings)
    service = await ToolService.open(platform, connect_mcp=False)
    try:
        tenant = await platform.tenants.find_by_name("default")
        assert tenant is not None
        caller = Caller(tenant_id=tenant.id, actor="key:test")
        workspace = service.executor.workspace_for(caller).root
        workspace.mkdir(parents=True, exist_ok=True)
        assert workspace.is_relative_to(workspace_root(settings))
        yield service, caller, workspace
    finally:
        await service.close()
        await platform.close()


def _record(*words: str) -> ToolCall:
    return ToolCall("run_command", {"argv": ["python3", "-c", RECORD, *words]}, "call-1")


async def test_asking_prepares_and_approving_runs_exactly_the_approved_command(
    gated: tuple[ToolService, Caller, Path],
) -> None:
    service, caller, workspace = gated
    pending = await service.executor.execute(caller, _record("approved"))
    assert pending.status == "pending_approval" and pending.approval_id
    assert pending.approval_id in service.executor.sandbox.prepared
    assert not (workspace / "ran.txt").exists()

    await service.executor.decide(
        caller.tenant_id, pending.approval_id, "approve", decided_by="key:boss"
    )
    done = await service.executor.resume(caller, pending.approval_id)

    assert done.status == "ok", done
    assert done.output["prepared"] is True and done.output["stdout"].strip() == "approved"
    assert (workspace / "ran.txt").read_text() == "approved"
    assert not _processes_with(f"roost-prepared:{pending.approval_id}")


async def test_denying_tears_the_prepared_jail_down_and_runs_nothing(
    gated: tuple[ToolService, Caller, Path],
) -> None:
    service, caller, workspace = gated
    pending = await service.executor.execute(caller, _record("denied"))
    assert pending.approval_id
    pid = service.executor.sandbox.prepared.pid(pending.approval_id)
    assert pid is not None and _alive(pid)

    await service.executor.decide(
        caller.tenant_id, pending.approval_id, "deny", decided_by="key:boss"
    )

    assert pending.approval_id not in service.executor.sandbox.prepared
    assert not _alive(pid) and not _processes_with(f"roost-prepared:{pending.approval_id}")
    denied = await service.executor.resume(caller, pending.approval_id)
    assert denied.error_type == "approval_denied"
    assert not (workspace / "ran.txt").exists()


async def test_an_edited_approval_runs_the_edited_argv_not_the_asked_one(
    gated: tuple[ToolService, Caller, Path],
) -> None:
    service, caller, workspace = gated
    pending = await service.executor.execute(caller, _record("asked"))
    assert pending.approval_id
    edited = {"argv": ["python3", "-c", RECORD, "edited"]}
    await service.executor.decide(caller.tenant_id, pending.approval_id, "edit",
                                  decided_by="key:boss", arguments=edited)  # fmt: skip
    # The call as first asked no longer matches the approval: refused, nothing runs.
    stale = await service.executor.execute(
        caller, dataclasses.replace(_record("asked"), approval_id=pending.approval_id)
    )
    assert stale.error_type == "approval_invalid"
    assert not (workspace / "ran.txt").exists()
    assert not _processes_with(f"roost-prepared:{pending.approval_id}")
    done = await service.executor.resume(caller, pending.approval_id)
    assert done.status == "ok" and done.output["stdout"].strip() == "edited"
    assert (workspace / "ran.txt").read_text() == "edited"


async def test_an_expired_approval_runs_nothing_and_leaves_no_jail(
    gated: tuple[ToolService, Caller, Path],
) -> None:
    service, caller, workspace = gated
    pending = await service.executor.execute(caller, _record("late"))
    assert pending.approval_id
    await service.executor.decide(
        caller.tenant_id, pending.approval_id, "approve", decided_by="key:boss"
    )
    await service.approvals.database.execute(
        "UPDATE tool_approvals SET expires_at = 0 WHERE id = :id", {"id": pending.approval_id}
    )

    late = await service.executor.resume(caller, pending.approval_id)

    assert late.error_type == "approval_invalid" and "expired" in (late.error_message or "")
    assert not (workspace / "ran.txt").exists()
    assert not _processes_with(f"roost-prepared:{pending.approval_id}")


async def test_closing_the_tool_layer_leaves_no_prepared_jail(
    gated: tuple[ToolService, Caller, Path],
) -> None:
    service, caller, workspace = gated
    pending = await service.executor.execute(caller, _record("shutdown"))
    assert pending.approval_id
    pid = service.executor.sandbox.prepared.pid(pending.approval_id)
    assert pid is not None and _alive(pid)
    await service.close()
    assert not _alive(pid) and not _processes_with(f"roost-prepared:{pending.approval_id}")
    assert not (workspace / "ran.txt").exists()
    assert len(service.executor.sandbox.prepared) == 0
