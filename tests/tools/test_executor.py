"""The call pipeline: permissions, capabilities, approvals, timeouts, audit, parallelism."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

from roost.platform import Platform
from roost.tools.base import RiskLevel, Tool
from roost.tools.context import ToolContext
from roost.tools.executor import ToolCall
from roost.tools.permissions import Caller, PermissionPolicy, Role
from roost.tools.service import ToolService
from roost.tools.toolsets import StaticToolset


async def test_ok_call_is_audited_with_an_argument_hash_not_the_arguments(
    service: ToolService, caller: Caller, platform: Platform
) -> None:
    write = ToolCall("write_file", {"path": "a.txt", "content": "secret-token-123"}, "c1")
    result = await service.executor.execute(caller, write)
    assert result.status == "ok" and result.output == {"path": "a.txt", "bytes_written": 16}
    events = await platform.audit.list(caller.tenant_id)
    event = next(e for e in events if e.action == "tool.call")
    assert (event.actor, event.target, event.outcome) == ("key:test", "write_file", "ok")
    assert len(event.details["call_hash"]) == 64 and event.details["call_id"] == "c1"
    assert "secret-token-123" not in str(event.details)


async def test_errors_come_back_as_results(service: ToolService, caller: Caller) -> None:
    missing = await service.executor.execute(caller, ToolCall("no_such_tool"))
    assert (missing.status, missing.error_type) == ("error", "unknown_tool")
    bad = await service.executor.execute(caller, ToolCall("read_file", {"path": 3}))
    assert bad.error_type == "invalid_arguments" and "path" in (bad.error_message or "")
    absent = await service.executor.execute(caller, ToolCall("read_file", {"path": "nope"}))
    assert absent.error_type == "not_found"


async def test_role_limits_risk_tools_and_paths(service: ToolService, caller: Caller) -> None:
    policy = PermissionPolicy(
        service.minter,
        roles={
            "reader": Role("reader", RiskLevel.READ),
            "docs": Role("docs", RiskLevel.WRITE, tools=("*_file",), paths=("docs/*",)),
            "tester": Role("tester", RiskLevel.EXECUTE, executables=("python3",)),
        },
        bindings={"key:r": "reader", "key:d": "docs", "key:t": "tester"},
        default_role="reader",
    )
    executor = service.executor
    executor.permissions = policy
    reader = dataclasses.replace(caller, actor="key:r")
    denied = await executor.execute(reader, ToolCall("write_file", {"path": "a", "content": ""}))
    assert denied.error_type == "forbidden" and "risk" in (denied.error_message or "")
    docs = dataclasses.replace(caller, actor="key:d")
    ok = await executor.execute(docs, ToolCall("write_file", {"path": "docs/a.md", "content": "x"}))
    assert ok.status == "ok"
    outside = await executor.execute(docs, ToolCall("write_file", {"path": "src/a", "content": ""}))
    assert outside.error_type == "forbidden" and "path" in (outside.error_message or "")
    assert [t.name for t in await executor.list_tools(reader)][:3] == [
        "calculate",
        "code_outline",
        "convert_units",
    ]
    tester = dataclasses.replace(caller, actor="key:t")
    git = await executor.execute(tester, ToolCall("run_command", {"argv": ["git", "status"]}))
    assert git.error_type == "forbidden" and "may not run 'git'" in (git.error_message or "")
    python = await executor.execute(tester, ToolCall("run_command", {"argv": ["python3", "-V"]}))
    assert python.status == "ok"


async def test_agents_need_a_capability_covering_the_exact_call(
    service: ToolService, caller: Caller
) -> None:
    token = service.minter.mint(
        tenant_id=caller.tenant_id,
        agent_id="coder",
        run_id="run1",
        tools=("read_file", "write_file"),
        arguments={"path": "notes/*"},
    )
    agent = Caller(caller.tenant_id, "agent:coder", "coder", "run1", token)
    ok = await service.executor.execute(
        agent, ToolCall("write_file", {"path": "notes/a", "content": "x"})
    )
    assert ok.status == "ok"
    for call, reason in [
        (ToolCall("write_file", {"path": "src/a", "content": "x"}), "outside the capability"),
        (ToolCall("list_dir", {}), "does not cover tool"),
    ]:
        result = await service.executor.execute(agent, call)
        assert result.error_type == "forbidden" and reason in (result.error_message or "")
    other_run = dataclasses.replace(agent, run_id="run2")
    stolen = await service.executor.execute(other_run, ToolCall("read_file", {"path": "notes/a"}))
    assert "another tenant, agent or run" in (stolen.error_message or "")
    forged = dataclasses.replace(agent, capability=token[:-2] + "AA")
    assert (
        await service.executor.execute(forged, ToolCall("read_file", {"path": "notes/a"}))
    ).error_type == "forbidden"
    unsigned = dataclasses.replace(agent, capability=None)
    assert "capability token" in (
        (await service.executor.execute(unsigned, ToolCall("list_dir"))).error_message or ""
    )


async def test_approval_flow_approve_then_run_once(service: ToolService, caller: Caller) -> None:
    (service.executor.workspace_for(caller).root / "old.txt").write_text("x")
    call = ToolCall("delete_file", {"path": "old.txt"}, "c9")
    pending = await service.executor.execute(caller, call)
    assert pending.status == "pending_approval" and pending.approval_id
    assert (service.executor.workspace_for(caller).root / "old.txt").exists()
    queue = await service.approvals.list(caller.tenant_id, status="pending")
    assert [a.id for a in queue] == [pending.approval_id]
    await service.executor.decide(
        caller.tenant_id, pending.approval_id, "approve", decided_by="key:boss"
    )
    done = await service.executor.execute(
        caller, dataclasses.replace(call, approval_id=pending.approval_id)
    )
    assert done.status == "ok"
    assert not (service.executor.workspace_for(caller).root / "old.txt").exists()
    again = await service.executor.execute(
        caller, dataclasses.replace(call, approval_id=pending.approval_id)
    )
    assert again.error_type == "approval_invalid" and "already been used" in (
        again.error_message or ""
    )


async def test_denial_reaches_the_agent_as_a_tool_error(
    service: ToolService, caller: Caller
) -> None:
    pending = await service.executor.execute(caller, ToolCall("git_push", {}))
    assert pending.approval_id
    await service.executor.decide(
        caller.tenant_id, pending.approval_id, "deny", decided_by="key:boss", reason="not on friday"
    )
    denied = await service.executor.resume(caller, pending.approval_id)
    assert denied.error_type == "approval_denied" and "not on friday" in (
        denied.error_message or ""
    )


async def test_edited_arguments_are_what_runs(service: ToolService, caller: Caller) -> None:
    root = service.executor.workspace_for(caller).root
    (root / "keep.txt").write_text("k")
    (root / "tmp.txt").write_text("t")
    pending = await service.executor.execute(caller, ToolCall("delete_file", {"path": "keep.txt"}))
    assert pending.approval_id
    edited = await service.executor.decide(
        caller.tenant_id,
        pending.approval_id,
        "edit",
        decided_by="key:boss",
        arguments={"path": "tmp.txt"},
    )
    assert edited.edited and edited.arguments == {"path": "tmp.txt"}
    stale = await service.executor.execute(
        caller, ToolCall("delete_file", {"path": "keep.txt"}, approval_id=pending.approval_id)
    )
    assert stale.error_type == "approval_invalid"
    assert (await service.executor.resume(caller, pending.approval_id)).status == "ok"
    assert (root / "keep.txt").exists() and not (root / "tmp.txt").exists()


async def test_timeouts_and_bounded_parallelism(service: ToolService, caller: Caller) -> None:
    running = 0
    peak = 0
    release = asyncio.Event()

    async def slow(ctx: ToolContext, arguments: dict[str, Any]) -> int:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        if running == service.executor.max_parallel:
            release.set()
        await release.wait()
        running -= 1
        return int(arguments["n"])

    async def hang(ctx: ToolContext, arguments: dict[str, Any]) -> None:
        await asyncio.Event().wait()

    service.registry.add_for_tenant(
        caller.tenant_id,
        StaticToolset(
            [
                Tool("slow", "", {"type": "object"}, slow),
                Tool("hang", "", {"type": "object"}, hang, timeout_s=0.2),
            ]
        ),
    )
    calls = [ToolCall("slow", {"n": i}) for i in range(10)]
    results = await service.executor.execute_many(caller, calls)
    assert [r.output for r in results] == list(range(10))
    assert peak == service.executor.max_parallel
    timed_out = await service.executor.execute(caller, ToolCall("hang"))
    assert timed_out.error_type == "timeout"
